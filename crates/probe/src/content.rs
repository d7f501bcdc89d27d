//! Page content: charset decoding, visible text, structure, similarity.

use scraper::{Html, Node};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What is kept of a page long enough to compare it with its other-family twin.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub charset: String,
    pub title: Option<String>,
    /// Visible text, whitespace collapsed.
    pub text: String,
    /// Element name → count (the page's structure).
    pub tags: HashMap<String, u32>,
    /// Links and sub-resources, when the fetch asked for them (crawling).
    pub links: Option<crate::links::PageLinks>,
}

impl Page {
    pub fn text_sha256(&self) -> String {
        hex::encode(Sha256::digest(self.text.as_bytes()))
    }
}

/// The charset named in a Content-Type header, if any.
pub fn charset_from_content_type(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        (key.trim().eq_ignore_ascii_case("charset"))
            .then(|| value.trim().trim_matches(['"', '\'']).to_ascii_lowercase())
    })
}

/// The charset declared by a `<meta>` in the first KiB of a document.
pub fn charset_from_meta(head: &[u8]) -> Option<String> {
    let window = &head[..head.len().min(1024)];
    let text = String::from_utf8_lossy(window).to_ascii_lowercase();
    let at = text.find("charset=")?;
    let rest = &text[at + "charset=".len()..];
    let rest = rest.trim_start_matches(['"', '\'']);
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(rest.len());
    let label = &rest[..end];
    (!label.is_empty()).then(|| label.to_string())
}

/// Decodes a body by its declared charset (header first, then `<meta>`),
/// defaulting to UTF-8. Returns the text and the charset actually used.
pub fn decode(body: &[u8], content_type: Option<&str>) -> (String, String) {
    let declared = content_type
        .and_then(charset_from_content_type)
        .or_else(|| charset_from_meta(body));
    let encoding = declared
        .as_deref()
        .and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    let (text, used, _had_errors) = encoding.decode(body);
    (text.into_owned(), used.name().to_ascii_lowercase())
}

/// Parses HTML into the parts used for comparison.
pub fn analyse(html: &str, charset: String) -> Page {
    let document = Html::parse_document(html);
    let mut tags: HashMap<String, u32> = HashMap::new();
    let mut text = String::new();
    let mut title = None;
    for node in document.tree.nodes() {
        match node.value() {
            Node::Element(element) => {
                *tags.entry(element.name().to_string()).or_default() += 1;
                if element.name() == "title" && title.is_none() {
                    let t: String = node
                        .children()
                        .filter_map(|c| c.value().as_text().map(|t| t.to_string()))
                        .collect();
                    title = Some(collapse_whitespace(&t));
                }
            }
            Node::Text(t) => {
                let hidden = node.ancestors().any(|a| {
                    a.value()
                        .as_element()
                        .is_some_and(|e| matches!(e.name(), "script" | "style" | "noscript" | "template" | "title"))
                });
                if !hidden {
                    text.push(' ');
                    text.push_str(t);
                }
            }
            _ => {}
        }
    }
    Page {
        charset,
        title,
        text: collapse_whitespace(&text),
        tags,
        links: None,
    }
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cap on compared text: a word diff is superlinear in the worst case.
const COMPARE_CHARS: usize = 100_000;

/// Word-level similarity of two texts in [0, 1] (1 = identical).
pub fn text_similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let a = truncate_chars(a, COMPARE_CHARS);
    let b = truncate_chars(b, COMPARE_CHARS);
    let diff = similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Myers)
        .deadline(Instant::now() + Duration::from_millis(500))
        .diff_words(a, b);
    f64::from(diff.ratio())
}

fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Cosine similarity of tag-frequency vectors in [0, 1].
pub fn structure_similarity(a: &HashMap<String, u32>, b: &HashMap<String, u32>) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let dot: f64 = a
        .iter()
        .map(|(k, va)| f64::from(*va) * f64::from(*b.get(k).unwrap_or(&0)))
        .sum();
    let norm = |m: &HashMap<String, u32>| m.values().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
    let denominator = norm(a) * norm(b);
    if denominator == 0.0 { 0.0 } else { dot / denominator }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_gb18030_declared_in_header() {
        let (bytes, _, _) = encoding_rs::GB18030.encode("<title>政府网站</title><p>你好</p>");
        let (text, used) = decode(&bytes, Some("text/html; charset=GB18030"));
        assert_eq!(used, "gb18030");
        let page = analyse(&text, used);
        assert_eq!(page.title.as_deref(), Some("政府网站"));
        assert_eq!(page.text, "你好");
    }

    #[test]
    fn decodes_gbk_declared_in_meta() {
        let (bytes, _, _) = encoding_rs::GBK.encode("<meta charset=\"gbk\"><title>中文</title>");
        let (text, used) = decode(&bytes, Some("text/html"));
        assert_eq!(used, "gbk");
        assert!(text.contains("中文"));
    }

    #[test]
    fn visible_text_skips_scripts_and_styles() {
        let page = analyse(
            "<html><head><title> A  page </title><style>x{}</style></head><body><p>Hello <b>world</b></p><script>var a;</script></body></html>",
            "utf-8".into(),
        );
        assert_eq!(page.title.as_deref(), Some("A page"));
        assert_eq!(page.text, "Hello world");
        assert_eq!(page.tags.get("p"), Some(&1));
    }

    #[test]
    fn similarity_is_one_for_equal_and_low_for_different() {
        assert_eq!(text_similarity("a b c", "a b c"), 1.0);
        assert!(text_similarity("the quick brown fox", "completely other words here") < 0.5);
        let a: HashMap<String, u32> = [("p".to_string(), 3), ("div".to_string(), 1)].into();
        assert!((structure_similarity(&a, &a) - 1.0).abs() < 1e-9);
        let b: HashMap<String, u32> = [("table".to_string(), 3)].into();
        assert_eq!(structure_similarity(&a, &b), 0.0);
    }
}
