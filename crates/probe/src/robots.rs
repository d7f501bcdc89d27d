//! robots.txt (RFC 9309): the group for our user agent (or `*`), longest
//! matching rule wins, `allow` wins a tie; `*` and `$` are understood.

/// One `(allow, pattern)` rule.
type Rule = (bool, String);

/// The rules that apply to one crawler.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Robots {
    rules: Vec<Rule>,
}

impl Robots {
    /// Parses robots.txt for `agent` (matched case-insensitively against the
    /// product tokens of `User-agent` lines), falling back to `*`.
    pub fn parse(text: &str, agent: &str) -> Robots {
        let agent = agent.to_ascii_lowercase();
        // (user agents, rules) per group.
        let mut groups: Vec<(Vec<String>, Vec<Rule>)> = Vec::new();
        let mut in_agents = false;
        for raw in text.lines().take(10_000) {
            let line = raw.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim().to_string());
            match key.as_str() {
                "user-agent" => {
                    if !in_agents {
                        groups.push((Vec::new(), Vec::new()));
                    }
                    in_agents = true;
                    if let Some(group) = groups.last_mut() {
                        group.0.push(value.to_ascii_lowercase());
                    }
                }
                "allow" | "disallow" => {
                    in_agents = false;
                    if let Some(group) = groups.last_mut()
                        && !value.is_empty()
                    {
                        group.1.push((key == "allow", value));
                    }
                }
                _ => {}
            }
        }
        let pick = |wanted: &dyn Fn(&str) -> bool| -> Vec<Rule> {
            groups
                .iter()
                .filter(|(agents, _)| agents.iter().any(|a| wanted(a)))
                .flat_map(|(_, rules)| rules.iter().cloned())
                .collect()
        };
        let mine = pick(&|a: &str| a != "*" && agent.contains(a));
        Robots {
            rules: if mine.is_empty() {
                pick(&|a: &str| a == "*")
            } else {
                mine
            },
        }
    }

    /// Whether `path` (with its query) may be fetched.
    pub fn allowed(&self, path: &str) -> bool {
        let mut best: Option<(usize, bool)> = None;
        for (allow, pattern) in &self.rules {
            if matches(pattern, path) {
                let len = pattern.len();
                best = match best {
                    Some((l, a)) if l > len || (l == len && a) => Some((l, a)),
                    _ => Some((len, *allow)),
                };
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }
}

/// Prefix match with `*` (any run) and a trailing `$` (end of path).
fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut at = 0;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !path.starts_with(part) {
                return false;
            }
            at = part.len();
        } else if let Some(found) = path[at..].find(part) {
            at += found + part.len();
        } else {
            return false;
        }
    }
    if !anchored {
        return true;
    }
    // Anchored: the last literal part must end the path.
    parts.last().is_some_and(|last| path.ends_with(last)) && (parts.len() > 1 || at == path.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# comment\nUser-agent: *\nDisallow: /private/\nDisallow: /*.pdf$\nAllow: /private/open\n\nUser-agent: OtherBot\nDisallow: /\n";

    #[test]
    fn the_star_group_applies_with_longest_match() {
        let r = Robots::parse(TEXT, "v6scope/0.1");
        assert!(r.allowed("/"));
        assert!(!r.allowed("/private/x.html"));
        assert!(r.allowed("/private/open/page"));
        assert!(!r.allowed("/docs/a.pdf"));
        assert!(r.allowed("/docs/a.pdf?x=1"));
    }

    #[test]
    fn a_named_group_wins_over_star() {
        let r = Robots::parse(TEXT, "otherbot");
        assert!(!r.allowed("/anything"));
        let r = Robots::parse(
            "User-agent: v6scope\nDisallow: /slow\nUser-agent: *\nDisallow: /\n",
            "v6scope/0.1",
        );
        assert!(r.allowed("/fast"));
        assert!(!r.allowed("/slow/x"));
    }

    #[test]
    fn empty_or_garbage_allows_everything() {
        assert!(Robots::parse("", "v6scope").allowed("/x"));
        assert!(Robots::parse("<html>not robots</html>\n\u{0}\u{1}", "v6scope").allowed("/x"));
        assert!(Robots::parse("User-agent: *\nDisallow:\n", "v6scope").allowed("/x"));
    }
}
