//! The pages' two languages. Labels are looked up by key; a missing key is
//! a compile-time-visible string in both columns, not a runtime surprise.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Lang {
    #[default]
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh-CN")]
    Zh,
}

impl Lang {
    /// A language tag (BCP 47, case-insensitive): `en`, `en-GB`, `zh`,
    /// `zh-CN`, `zh-Hans`, `zh-Hans-CN` ...
    pub fn parse(text: &str) -> Option<Lang> {
        let tag = text.trim().to_ascii_lowercase();
        let primary = tag.split(['-', '_']).next().unwrap_or("");
        match primary {
            "en" => Some(Lang::En),
            // Traditional-script Chinese is not offered; Simplified is closer than English.
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// `?lang=`: the forms the API documents (`zh-cn` is as good as `zh-CN`).
    pub fn from_query(text: &str) -> Option<Lang> {
        match text {
            "en" => Some(Lang::En),
            "zh" | "zh-CN" | "zh-cn" | "zh-Hans" | "zh-hans" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// The language an `Accept-Language` header prefers among ours, if any
    /// (highest q first; ties keep the header's order).
    pub fn negotiate(accept_language: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for item in accept_language.split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Lang::parse(tag)
                && q > 0.0
                && best.is_none_or(|(b, _)| q > b)
            {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l)
    }

    /// ": " in English, the full-width "：" in Chinese.
    pub fn colon(self) -> &'static str {
        match self {
            Lang::En => ": ",
            Lang::Zh => "：",
        }
    }

    /// A verdict or check status (`pass`, `not_testable` ...) in this language.
    pub fn status(self, status: &str) -> String {
        if self == Lang::En {
            return status.replace('_', " ");
        }
        match status {
            "pass" => "通过",
            "fail" => "未通过",
            "warn" => "警告",
            "error" => "错误",
            "not_testable" => "无法测试",
            "not_applicable" => "不适用",
            "info" => "信息",
            other => return other.to_string(),
        }
        .to_string()
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    pub fn zh(self) -> bool {
        self == Lang::Zh
    }

    /// The label of `key` in this language.
    pub fn t(self, key: &str) -> &'static str {
        let (en, zh) = match key {
            "title" => ("v6scope — IPv6 deployment monitoring", "v6scope — IPv6 部署监测"),
            "overview" => ("Overview", "总览"),
            "unscaled" => ("Waiting for a sampling rate", "等待采样率"),
            "unscaled_note" => (
                "These exporters state no sampling rate: their IPv6 share is shown (the rate is the same for both families), their volumes are not. Give the rate when collecting: --sampling-default PREFIX=N.",
                "这些导出器未声明采样率：仅显示其IPv6占比（两种协议采样率相同），不显示流量值。采集时请用 --sampling-default PREFIX=N 指定采样率。",
            ),
            "records" => ("Records", "记录数"),
            "campaigns" => ("Campaigns", "监测任务"),
            "campaign" => ("Campaign", "监测任务"),
            "traffic" => ("Traffic", "流量"),
            "providers" => ("Providers", "服务商"),
            "runs" => ("Runs", "运行记录"),
            "site" => ("Site", "站点"),
            "plan" => ("Plan targets", "规划目标"),
            "indicator" => ("Indicator", "指标"),
            "target" => ("Target", "目标值"),
            "deadline" => ("Deadline", "期限"),
            "measured" => ("Measured", "实测值"),
            "standing" => ("Standing", "进展"),
            "gap" => ("Gap", "差距"),
            "targets" => ("Targets", "目标数"),
            "passing" => ("Passing", "通过数"),
            "rate" => ("Support rate", "支持率"),
            "score" => ("Mean score", "平均得分"),
            "category" => ("Category", "类别"),
            "region" => ("Region", "地区"),
            "organisation" => ("Organisation", "单位"),
            "provider" => ("Provider", "服务商"),
            "role" => ("Role", "角色"),
            "v4only" => ("Targets it leaves IPv4-only", "仅支持 IPv4 的目标数"),
            "status" => ("Status", "状态"),
            "domain" => ("Domain", "域名"),
            "filter" => ("Filter", "筛选"),
            "all" => ("All", "全部"),
            "trend" => ("Support rate over runs", "历次支持率趋势"),
            "latest_run" => ("Latest run", "最近一次运行"),
            "no_runs" => ("No finished run yet.", "尚无完成的运行。"),
            "worst" => ("Worst sites", "得分最低的站点"),
            "best" => ("Best sites", "得分最高的站点"),
            "changes" => ("Changes", "变化记录"),
            "regression" => ("Regression", "退步"),
            "improvement" => ("Improvement", "改进"),
            "timeline" => ("Timeline", "历史"),
            "checks" => ("Checks", "检测项"),
            "evidence" => ("Evidence", "证据"),
            "remedy" => ("What to fix", "整改建议"),
            "failing_links" => ("Failing links", "失败链接"),
            "share" => ("IPv6 share of bytes", "IPv6 流量占比"),
            "users" => ("Active IPv6 users (30 days)", "IPv6 活跃用户（30 天）"),
            "period" => ("Period", "时段"),
            "group" => ("Group", "分组"),
            "bytes_v4" => ("IPv4 bytes", "IPv4 字节"),
            "bytes_v6" => ("IPv6 bytes", "IPv6 字节"),
            "jobs" => ("Jobs", "任务队列"),
            "vantages" => ("Vantages", "观测点"),
            "clients" => ("Clients", "用户终端"),
            "clients_title" => ("Clients: IPv6 capable and preferred", "用户终端：IPv6 可用与优先"),
            "beacon_group" => ("Group", "分组"),
            "beacon_tested" => ("Clients tested", "测试终端数"),
            "beacon_capable" => ("IPv6 capable", "IPv6 可用"),
            "beacon_preferred" => ("IPv6 preferred", "IPv6 优先"),
            "beacon_broken" => ("Broken IPv6", "IPv6 故障"),
            "beacon_mtu" => ("MTU trouble", "MTU 问题"),
            "beacon_resolver" => ("Resolver without IPv6", "解析器不支持 IPv6"),
            "beacon_none" => ("No beacon result for this day.", "当日无测试结果。"),
            "beacon_how" => (
                "Distinct clients per day (HyperLogLog estimates) from the beacon page /beacon and its snippet; capable: the IPv6-only object loaded over IPv6; preferred: the dual-stack object came over IPv6.",
                "按日统计的不同终端数（HyperLogLog 估计），来自测试页 /beacon 及其嵌入脚本；可用：纯 IPv6 对象经 IPv6 加载成功；优先：双栈对象经 IPv6 获取。",
            ),
            "agents" => ("Agents", "探针"),
            "agent" => ("Agent", "探针"),
            "labels" => ("Labels", "标签"),
            "last_seen" => ("Last seen", "最近联系"),
            "selftest" => ("Self-test", "自检"),
            "results" => ("Results", "结果数"),
            "error_rate" => ("Error rate", "错误率"),
            "targets_per_second" => ("Targets/s", "目标/秒"),
            "leased" => ("Leased", "租用中"),
            "revoked" => ("revoked", "已吊销"),
            "seconds_ago" => ("s ago", "秒前"),
            "never" => ("never", "从未"),
            "no_agents" => (
                "No agent has a token yet: v6scope agents add NAME.",
                "尚无探针令牌：v6scope agents add NAME。",
            ),
            "fleet_runs" => ("Runs from several vantages", "多观测点运行"),
            "per_vantage" => ("Per vantage", "各观测点"),
            "combined" => ("Combined", "综合"),
            "clock_off" => ("clock off by", "时钟偏差"),
            "edge_nodes" => ("CDN and cloud nodes (MIIT method)", "CDN与云节点（工信部方法）"),
            "edge_method" => (
                "IPv6 nodes must be more than 85 % of nodes, and IPv6 coverage (region × ISP) at least 85 % of IPv4 coverage, from the campaign's latest run from agents.",
                "IPv6节点须超过节点总数的85%，IPv6覆盖（地区×运营商）须不低于IPv4覆盖的85%；数据来自该任务最近一次多观测点运行。",
            ),
            "kind" => ("Kind", "类型"),
            "nodes" => ("Nodes", "节点数"),
            "ipv6_nodes" => ("IPv6 nodes", "IPv6节点数"),
            "node_share" => ("Node share", "节点支持率"),
            "coverage_ratio" => ("Coverage ratio", "覆盖能力比"),
            "supports_ipv6" => ("Supports IPv6", "支持IPv6"),
            "cloud_products" => ("Cloud products", "云产品"),
            "product" => ("Product", "产品"),
            "no_vantage_matches" => ("No vantage has these labels.", "没有观测点带有这些标签。"),
            "schedules" => ("Schedules", "定时计划"),
            "report" => ("Monthly report", "月度报告"),
            "download" => ("Download", "下载"),
            "no_traffic" => ("No traffic collected yet.", "尚未采集流量。"),
            "started" => ("Started", "开始时间"),
            "finished" => ("Finished", "结束时间"),
            "source" => ("Source", "来源"),
            "state" => ("State", "状态"),
            "apply" => ("Apply", "应用"),
            "previous" => ("Previous", "上一页"),
            "next" => ("Next", "下一页"),
            "met" => ("met", "已达成"),
            "on_track" => ("on track", "按计划推进"),
            "behind" => ("behind", "落后"),
            "no_trend" => ("no trend yet", "暂无趋势"),
            "not_measured" => ("not measured", "未测量"),
            "language" => ("中文", "English"),
            "profile" => ("Profile", "评测标准"),
            "run" => ("Run", "运行"),
            "label" => ("Verdict", "结论"),
            "import" => ("Import a campaign", "导入监测任务"),
            "name" => ("Name", "名称"),
            "csv" => (
                "Targets: CSV with a header domain,category,organisation,region, or a domain per line",
                "目标：CSV（表头 domain,category,organisation,region）或每行一个域名",
            ),
            "token" => ("Token", "令牌"),
            "run_now" => ("Run now", "立即运行"),
            "add_schedule" => ("Add a schedule", "添加定时计划"),
            "cron" => ("Cron (UTC), e.g. 0 3 * * *", "Cron 表达式（UTC），如 0 3 * * *"),
            "crawl" => ("Crawl the site (二级/三级)", "抓取全站（二级/三级）"),
            "note_users" => (
                "distinct subscribers in the collected flows, 30 days",
                "采集流量中 30 天内的不同用户数",
            ),
            "note_no_flows" => ("no flows collected", "尚未采集流量"),
            "note_not_measured" => ("not measured by this deployment", "本系统未测量"),
            "note_no_category" => ("no campaign target of this category", "监测任务中无此类别的目标"),
            "operators" => ("Operators", "运营商"),
            "upload" => ("Upload figures (CSV)", "上传数据（CSV）"),
            "collector_token" => ("Collector token", "采集器令牌"),
            "rows_refused" => (
                "Rows with errors; nothing was stored.",
                "以下行有错误，未保存任何数据。",
            ),
            "row" => ("Row", "第"),
            "operators_title" => (
                "Operators: reported figures and IPv6 traffic share",
                "运营商：上报数据与IPv6流量占比",
            ),
            "operator" => ("Operator", "运营商"),
            "point" => ("Measurement point", "监测点"),
            "version" => ("Version", "版本"),
            "submitted" => ("Submitted", "提交时间"),
            "mobile_share" => ("Mobile IPv6 traffic share", "移动网络IPv6流量占比"),
            "fixed_share" => ("Fixed IPv6 traffic share", "固定网络IPv6流量占比"),
            "reported" => ("reported", "上报"),
            "from_flows" => ("from flow collectors", "流量采集"),
            "national" => ("National", "全国"),
            "template" => ("CSV template", "CSV 模板"),
            "history" => ("Submissions and corrections", "提交与更正记录"),
            "no_operator_reports" => ("No operator has reported yet.", "尚无运营商上报数据。"),
            "superseded" => ("superseded", "已被更正"),
            "current" => ("current", "现行"),
            "active_connections" => ("IPv6 active connections", "IPv6活跃连接数"),
            "ipv6_users" => ("Users with IPv6", "IPv6用户数"),
            "iot" => ("IoT IPv6 connections", "物联网IPv6连接数"),
            "ipv6_traffic" => ("IPv6 traffic", "IPv6流量"),
            "ipv4_traffic" => ("IPv4 traffic", "IPv4流量"),
            _ => ("?", "?"),
        };
        if self.zh() { zh } else { en }
    }
}
