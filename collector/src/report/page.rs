//! The one HTML page shell every page of the toolkit is built in (`collector report`, `collector
//! compare --html`, the capacity search's page): the head with the house style sheet, a header
//! with the title and its lead, then charts and tables in one way each. Self-contained: nothing is
//! fetched when the page is opened.

use std::fmt::Write as _;

use super::style::Chart;

/// The pages' CSS.
const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1000px;padding:24px;color:#222;background:#fafafa}\
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:0 0 .25rem}\
.summary{display:flex;flex-wrap:wrap;gap:10px;margin:1rem 0 1.5rem;padding:0;list-style:none}\
.summary li{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 14px}\
.summary b{display:block;font-size:1.25rem}.summary span{color:#666;font-size:.85rem}\
.state-complete b{color:#2a7d2a}.state-short b{color:#b3261e}\
figure{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0 0 18px;padding:14px}\
figcaption p{color:#555;margin:.25rem 0 .5rem;font-size:.9rem}\
svg{display:block;max-width:100%;height:auto}\
table{border-collapse:collapse;margin:.4rem 0 1.2rem;background:#fff;font-size:.9rem}\
th,td{border:1px solid #ddd;padding:4px 10px;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
th{background:#f0f0f0}footer{color:#777;font-size:.8rem;margin-top:1.5rem}code{font-size:.95em}";

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page being written.
pub struct Page(String);

impl Page {
    /// Starts a page: its head, and a header with `title` and `lead` (HTML, already escaped)
    /// under it.
    pub fn new(title: &str, lead: &str) -> Page {
        let title = escape(title);
        Page(format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n\
             <h1>{title}</h1>\n{lead}</header>\n"
        ))
    }

    /// Adds HTML as it is.
    pub fn push(&mut self, html: &str) {
        self.0.push_str(html);
    }

    /// Adds a chart: its figure, heading and caption.
    pub fn chart(&mut self, chart: &Chart) {
        self.0.push_str(&chart.figure_html());
    }

    /// Adds a table of text cells (escaped here); the `numeric` columns are right-aligned.
    pub fn table<R: AsRef<[String]>>(&mut self, header: &[&str], rows: &[R], numeric: &[usize]) {
        self.0.push_str("<table>\n<tr>");
        for h in header {
            let _ = write!(self.0, "<th>{}</th>", escape(h));
        }
        self.0.push_str("</tr>\n");
        for row in rows {
            self.0.push_str("<tr>");
            for (i, cell) in row.as_ref().iter().enumerate() {
                let class = if numeric.contains(&i) {
                    " class=\"n\""
                } else {
                    ""
                };
                let _ = write!(self.0, "<td{class}>{}</td>", escape(cell));
            }
            self.0.push_str("</tr>\n");
        }
        self.0.push_str("</table>\n");
    }

    /// The finished page.
    pub fn finish(mut self) -> String {
        self.0.push_str("</body>\n</html>\n");
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_escapes_its_text_and_closes() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let mut page = Page::new("Run <1>", "<p>lead</p>\n");
        page.table(&["a", "b"], &[vec!["<x>".to_owned(), "2".to_owned()]], &[1]);
        let html = page.finish();
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(html.contains("<title>Run &lt;1&gt;</title>"), "{html}");
        assert!(
            html.contains("<h1>Run &lt;1&gt;</h1>\n<p>lead</p>\n</header>"),
            "{html}"
        );
        assert!(
            html.contains("<tr><td>&lt;x&gt;</td><td class=\"n\">2</td></tr>"),
            "{html}"
        );
        assert!(html.ends_with("</body>\n</html>\n"), "{html}");
    }
}
