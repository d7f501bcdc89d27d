use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

/// Which packets a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Every packet.
    All,
    /// Every IPv4 packet.
    Ipv4,
    /// Every IPv6 packet.
    Ipv6,
    /// Packets whose source or destination lies in the prefix.
    Prefix(IpNet),
}

impl Selector {
    fn matches(&self, src: IpAddr, dst: IpAddr) -> bool {
        match self {
            Selector::All => true,
            Selector::Ipv4 => src.is_ipv4(),
            Selector::Ipv6 => src.is_ipv6(),
            Selector::Prefix(net) => net.contains(&src) || net.contains(&dst),
        }
    }
}

/// A condition: what it applies to, how long matching packets wait and the
/// share of them that is lost.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub selector: Selector,
    pub delay: Duration,
    /// Probability in [0, 1] that a matching packet is dropped.
    pub loss: f64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("empty rule: expected SELECTOR [delay=MS] [loss=PCT%]")]
    Empty,
    #[error("'{0}' is not a selector: ipv4, ipv6, all or a prefix such as 2001:db8::/32")]
    Selector(String),
    #[error("'{0}' is not a delay: milliseconds 0-10000, as 40, 40ms or 1.5s")]
    Delay(String),
    #[error("'{0}' is not a loss: a percentage 0-100, as 1% or 0.5")]
    Loss(String),
    #[error("unknown setting '{0}': rules take delay= and loss=")]
    Setting(String),
}

/// The longest delay a rule may ask for: a packet held longer than this is
/// a configuration mistake, and the kernel queue would fill.
const MAX_DELAY: Duration = Duration::from_secs(10);

fn parse_delay(text: &str) -> Result<Duration, RuleError> {
    let bad = || RuleError::Delay(text.to_string());
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1e-3)
    };
    let seconds = number.parse::<f64>().map_err(|_| bad())? * scale;
    if !(0.0..=MAX_DELAY.as_secs_f64()).contains(&seconds) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_loss(text: &str) -> Result<f64, RuleError> {
    let number = text.strip_suffix('%').unwrap_or(text);
    let percent = number.parse::<f64>().map_err(|_| RuleError::Loss(text.to_string()))?;
    if !(0.0..=100.0).contains(&percent) {
        return Err(RuleError::Loss(text.to_string()));
    }
    Ok(percent / 100.0)
}

impl FromStr for Rule {
    type Err = RuleError;

    /// `ipv6 delay=60ms loss=1%`, `2001:db8:101::/48 delay=300`, `all loss=100%`.
    fn from_str(text: &str) -> Result<Rule, RuleError> {
        let mut words = text.split_whitespace();
        let selector = match words.next().ok_or(RuleError::Empty)? {
            "all" => Selector::All,
            "ipv4" => Selector::Ipv4,
            "ipv6" => Selector::Ipv6,
            other => Selector::Prefix(
                other
                    .parse::<IpNet>()
                    .or_else(|_| other.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| RuleError::Selector(other.to_string()))?
                    .trunc(),
            ),
        };
        let mut rule = Rule {
            selector,
            delay: Duration::ZERO,
            loss: 0.0,
        };
        for word in words {
            match word.split_once('=') {
                Some(("delay", value)) => rule.delay = parse_delay(value)?,
                Some(("loss", value)) => rule.loss = parse_loss(value)?,
                _ => return Err(RuleError::Setting(word.to_string())),
            }
        }
        Ok(rule)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.selector {
            Selector::All => write!(f, "all")?,
            Selector::Ipv4 => write!(f, "ipv4")?,
            Selector::Ipv6 => write!(f, "ipv6")?,
            Selector::Prefix(net) => write!(f, "{net}")?,
        }
        write!(
            f,
            " delay={}ms loss={}%",
            self.delay.as_secs_f64() * 1e3,
            self.loss * 100.0
        )
    }
}

/// The addresses of an IP packet (as NFQUEUE hands it over: from the IP
/// header on), or None when it is too short to hold them.
fn addresses(packet: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match packet.first()? >> 4 {
        4 if packet.len() >= 20 => {
            let src: [u8; 4] = packet[12..16].try_into().ok()?;
            let dst: [u8; 4] = packet[16..20].try_into().ok()?;
            Some((Ipv4Addr::from(src).into(), Ipv4Addr::from(dst).into()))
        }
        6 if packet.len() >= 40 => {
            let src: [u8; 16] = packet[8..24].try_into().ok()?;
            let dst: [u8; 16] = packet[24..40].try_into().ok()?;
            Some((Ipv6Addr::from(src).into(), Ipv6Addr::from(dst).into()))
        }
        _ => None,
    }
}

/// The index of the first rule that applies to the packet.
pub fn classify(rules: &[Rule], packet: &[u8]) -> Option<usize> {
    let (src, dst) = addresses(packet)?;
    rules.iter().position(|r| r.selector.matches(src, dst))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 20];
        p.resize(12, 0);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p
    }

    fn v6(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let mut p = vec![0x60];
        p.resize(8, 0);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p
    }

    #[test]
    fn parses_rules() {
        let r: Rule = "ipv6 delay=60ms loss=1%".parse().unwrap();
        assert_eq!(r.selector, Selector::Ipv6);
        assert_eq!(r.delay, Duration::from_millis(60));
        assert!((r.loss - 0.01).abs() < 1e-12);
        let r: Rule = "2001:db8:101::1/48 delay=1.5s".parse().unwrap();
        assert_eq!(r.selector, Selector::Prefix("2001:db8:101::/48".parse().unwrap()));
        assert_eq!(r.delay, Duration::from_millis(1500));
        let r: Rule = "198.51.100.53 delay=0".parse().unwrap();
        assert_eq!(r.selector, Selector::Prefix("198.51.100.53/32".parse().unwrap()));
        assert_eq!("all loss=100".parse::<Rule>().unwrap().loss, 1.0);
    }

    #[test]
    fn refuses_bad_rules() {
        assert_eq!("".parse::<Rule>(), Err(RuleError::Empty));
        assert!(matches!("ipv7 delay=1".parse::<Rule>(), Err(RuleError::Selector(_))));
        assert!(matches!("ipv4 delay=-1".parse::<Rule>(), Err(RuleError::Delay(_))));
        assert!(matches!("ipv4 delay=11s".parse::<Rule>(), Err(RuleError::Delay(_))));
        assert!(matches!("ipv4 delay=NaN".parse::<Rule>(), Err(RuleError::Delay(_))));
        assert!(matches!("ipv4 loss=101%".parse::<Rule>(), Err(RuleError::Loss(_))));
        assert!(matches!("ipv4 jitter=5".parse::<Rule>(), Err(RuleError::Setting(_))));
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules: Vec<Rule> = ["198.51.100.53 delay=0", "ipv4 delay=40", "ipv6 delay=60"]
            .iter()
            .map(|r| r.parse().unwrap())
            .collect();
        assert_eq!(classify(&rules, &v4([192, 0, 2, 2], [198, 51, 100, 53])), Some(0));
        assert_eq!(classify(&rules, &v4([198, 51, 100, 53], [192, 0, 2, 2])), Some(0));
        assert_eq!(classify(&rules, &v4([192, 0, 2, 2], [203, 0, 113, 4])), Some(1));
        let a: Ipv6Addr = "2001:db8:ffff::2".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:101::1".parse().unwrap();
        assert_eq!(classify(&rules, &v6(a, b)), Some(2));
        // Too short, or not IP: no rule.
        assert_eq!(classify(&rules, &[0x45, 0, 0]), None);
        assert_eq!(classify(&rules, &v6(a, b)[..39]), None);
        assert_eq!(classify(&rules, &[0x10; 40]), None);
        assert_eq!(classify(&rules[..1], &v6(a, b)), None);
    }
}
