//! HTML for the console: escaping, and the one layout every page shares
//! (a small inline stylesheet, no script).

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// `s` escaped for HTML text and attribute values: the report's escaping.
pub(crate) use crate::report::escape_html as esc;

/// `s` escaped for a URL's query value.
pub(crate) fn url(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222}\
nav{background:#234;padding:.5em 1em}nav a{color:#fff;margin-right:1.2em;text-decoration:none}\
nav form{display:inline;float:right}main{padding:1em}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#eef}.pending{background:#fff4d6}.bad{color:#a00}.ok{color:#070}\
.note{background:#eef8ee;border:1px solid #9c9;padding:.5em 1em}.err{background:#fbeaea;border:1px solid #c99;padding:.5em 1em}\
form.inline{display:inline}";

/// A whole page: `title`, the navigation (with a logout form when `csrf`
/// is given), and `body` (already escaped).
pub(crate) fn layout(title: &str, csrf: Option<&str>, body: &str) -> Html<String> {
    let logout = csrf
        .map(|c| {
            format!(
                "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Log out</button></form>",
                esc(c)
            )
        })
        .unwrap_or_default();
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · stxd</title><style>{STYLE}</style></head>\
<body><nav><a href=\"/\">Links</a><a href=\"/runs\">Runs</a><a href=\"/files\">Files</a><a href=\"/mapping\">Mapping</a><a href=\"/catalogue\">Catalogue</a><a href=\"/sales\">Sales</a>{logout}</nav>\
<main><h1>{t}</h1>\n{body}\n</main></body></html>\n",
        t = esc(title)
    ))
}

/// The hidden CSRF field of a write form.
pub(crate) fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    )
}

/// A page whose body was rendered on the blocking pool (or the pool's own
/// answer, a 500).
pub(crate) fn shown(title: &str, csrf: &str, body: Result<String, Response>) -> Response {
    match body {
        Ok(body) => layout(title, Some(csrf), &body).into_response(),
        Err(r) => r,
    }
}

/// The page that answers a write: `done` is the HTML the write produced,
/// or the HTML that says why nothing changed (422), or the worker's own
/// answer (a 500, a 503); `back` is appended to both.
pub(crate) fn answered(
    csrf: &str,
    title: &str,
    back: &str,
    done: Result<Result<String, String>, Response>,
) -> Response {
    match done {
        Ok(Ok(body)) => layout(title, Some(csrf), &format!("{body}{back}")).into_response(),
        Ok(Err(body)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            layout("Nothing changed", Some(csrf), &format!("{body}{back}")),
        )
            .into_response(),
        Err(r) => r,
    }
}

/// A write's outcome in words, as HTML: a note when it was done, the
/// reason when nothing changed.
pub(crate) fn in_words(done: Result<String, String>) -> Result<String, String> {
    done.map(|text| format!("<p class=\"note\" id=\"changed\">{}</p>", esc(&text)))
        .map_err(|problem| refusal(&problem))
}

/// Why nothing changed, as HTML.
pub(crate) fn refusal(problem: &str) -> String {
    format!("<p class=\"err\">{}</p>", esc(problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(url("a b/é"), "a%20b%2F%C3%A9");
    }
}
