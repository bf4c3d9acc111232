//! Project instructions: markdown to HTML, with any raw HTML in the source shown as text.
use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};

use crate::util::is_same_origin_path;

/// Renders markdown for `inner_html`. Raw HTML is escaped (instructions are written by leads
/// but read by everyone, so they must not be able to run script in a labeler's page), and
/// links may only be http(s), mailto or relative.
///
/// Images load only from the app itself (a path such as `/api/items/12/image`): an image from
/// elsewhere would load as soon as a labeler opens the page, telling its host who reads the
/// instructions and when (and the Content-Security-Policy would block it anyway). Any other
/// image becomes a link with its alt text (or its address), to follow on purpose.
pub fn render(src: &str) -> String {
    let opts = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    // For each image open at this point: where the fallback text of a link that replaced it
    // sits in `events` (None when the image was kept), and whether alt text has followed.
    let mut images: Vec<(Option<usize>, bool)> = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    for ev in Parser::new_ext(src, opts) {
        match ev {
            Event::Html(s) | Event::InlineHtml(s) => events.push(Event::Text(s)),
            Event::Start(Tag::Link { link_type, dest_url, title, id }) => events.push(Event::Start(Tag::Link {
                link_type,
                dest_url: if safe_url(&dest_url) { dest_url } else { "#".into() },
                title,
                id,
            })),
            Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
                if is_same_origin_path(dest_url.trim()) {
                    images.push((None, false));
                    events.push(Event::Start(Tag::Image { link_type, dest_url, title, id }));
                } else {
                    let safe = safe_url(&dest_url);
                    // Shown only if the alt text is empty: a link must say something.
                    let fallback: CowStr = if safe { dest_url.clone() } else { "image".into() };
                    let href: CowStr = if safe { dest_url } else { "#".into() };
                    events.push(Event::Start(Tag::Link { link_type, dest_url: href, title, id }));
                    images.push((Some(events.len()), false));
                    events.push(Event::Text(fallback));
                }
            }
            Event::End(TagEnd::Image) => match images.pop() {
                Some((Some(fallback), has_alt)) => {
                    if has_alt {
                        // Only later events shift; the fallbacks of outer images sit before it.
                        events.remove(fallback);
                    }
                    events.push(Event::End(TagEnd::Link));
                }
                _ => events.push(Event::End(TagEnd::Image)),
            },
            other => {
                if matches!(other, Event::Text(_) | Event::Code(_)) {
                    if let Some(top) = images.last_mut() {
                        top.1 = true;
                    }
                }
                events.push(other)
            }
        }
    }
    let mut out = String::with_capacity(src.len() * 3 / 2);
    html::push_html(&mut out, events.into_iter());
    out
}

fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    match lower.split_once(':') {
        // No scheme, or a colon only after a path/query/fragment character: relative.
        None => true,
        Some((scheme, _)) if scheme.contains(['/', '?', '#']) => true,
        Some((scheme, _)) => matches!(scheme, "http" | "https" | "mailto"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_basic_markdown() {
        let html = render("# Title\n\nSome *emphasis* and a [link](https://example.org).");
        assert!(html.contains("<h1>Title</h1>"));
        assert!(html.contains("<em>emphasis</em>"));
        assert!(html.contains("href=\"https://example.org\""));
    }

    #[test]
    fn escapes_raw_html() {
        let html = render("<script>alert(1)</script>\n\ninline <img src=x onerror=alert(1)> html");
        assert!(!html.contains("<script"));
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn neutralises_script_links() {
        let html = render("[click](javascript:alert(1)) [ok](/docs#a:b)");
        assert!(!html.contains("javascript:"));
        assert!(html.contains("href=\"/docs#a:b\""));
    }

    #[test]
    fn images_from_the_app_itself_are_shown() {
        assert_eq!(
            render("![a cat](/api/items/12/image \"Cat\")"),
            "<p><img src=\"/api/items/12/image\" alt=\"a cat\" title=\"Cat\" /></p>\n"
        );
    }

    #[test]
    fn other_images_become_links() {
        assert_eq!(
            render("![a cat](https://evil.example/track.png)"),
            "<p><a href=\"https://evil.example/track.png\">a cat</a></p>\n"
        );
        // No alt text: the link shows the address.
        assert_eq!(
            render("![](https://evil.example/t.png)"),
            "<p><a href=\"https://evil.example/t.png\">https://evil.example/t.png</a></p>\n"
        );
        // Tricks that leave the origin, and scripts, never become an image.
        for src in [
            "![x](//evil.example/t.png)",
            "![x](/\\evil.example/t.png)",
            "![x](http://evil.example/t.png)",
            "![x](data:image/png;base64,AAAA)",
            "![x](javascript:alert(1))",
            "![x](t.png)",
            "![x][r]\n\n[r]: https://evil.example/t.png",
            "<https://evil.example/t.png>\n\n![x](<https://evil.example/a b.png>)",
        ] {
            let html = render(src);
            assert!(!html.contains("<img"), "{src:?} → {html}");
            assert!(!html.contains("javascript:"), "{src:?} → {html}");
        }
        assert_eq!(render("![x](javascript:alert(1))"), "<p><a href=\"#\">x</a></p>\n");
        assert_eq!(render("![](javascript:alert(1))"), "<p><a href=\"#\">image</a></p>\n");
    }

    #[test]
    fn alt_text_with_markup_stays_inside_the_link() {
        assert_eq!(
            render("![a *big* cat](https://evil.example/t.png) after"),
            "<p><a href=\"https://evil.example/t.png\">a <em>big</em> cat</a> after</p>\n"
        );
    }
}
