//! The pieces of the daemons' status pages (`GET /status` on the metrics port): a page frame
//! with its style, HTML escaping, a load bar as inline SVG and a wall-clock time. Server-side
//! only: no script, nothing fetched from elsewhere, readable in a text browser.

use std::fmt::Write as _;

use switchboard_proto::UnixTime;

/// `text` made safe inside HTML text and attribute values.
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

/// A whole page: `title` (escaped) over `body` (HTML the caller built), refreshed every 5 s.
pub fn page(title: &str, body: &str) -> String {
    let title = escape(title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>{title}</title><style>\
         body{{font:14px system-ui,sans-serif;margin:1.5em;color:#222}}\
         h1{{font-size:1.3em}}h2{{font-size:1.05em;margin-top:1.4em}}\
         table{{border-collapse:collapse}}td,th{{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}}\
         .alive{{color:#176f2c}}.suspect{{color:#a15c00}}.down{{color:#b00020;font-weight:bold}}\
         .muted{{color:#777}}code{{font-size:.95em}}\
         </style></head><body><h1>{title}</h1>\n{body}\n</body></html>\n"
    )
}

/// A horizontal bar of `fraction` (clamped to 0..=1.5, marked at 1) as inline SVG.
pub fn bar(fraction: f64) -> String {
    let width = 240.0;
    let shown = fraction.clamp(0.0, 1.5) / 1.5 * width;
    let full = width / 1.5;
    let color = if fraction >= 1.0 {
        "#b00020"
    } else if fraction >= 0.8 {
        "#a15c00"
    } else {
        "#176f2c"
    };
    format!(
        "<svg width=\"{width}\" height=\"14\" role=\"img\" aria-label=\"{:.0}%\">\
         <rect width=\"{width}\" height=\"14\" fill=\"#eee\"/>\
         <rect width=\"{shown:.1}\" height=\"14\" fill=\"{color}\"/>\
         <line x1=\"{full:.1}\" x2=\"{full:.1}\" y1=\"0\" y2=\"14\" stroke=\"#222\"/></svg>",
        fraction * 100.0
    )
}

/// `time` as `HH:MM:SS UTC`.
pub fn clock(time: UnixTime) -> String {
    let day = time.0 % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        day / 3600,
        day % 3600 / 60,
        day % 60
    )
}

/// A table: the header cells, then rows of cells (each already HTML).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><tr>");
    for cell in header {
        let _ = write!(out, "<th>{}</th>", escape(cell));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_anywhere_cannot_inject_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert!(page("a<b", "").contains("<title>a&lt;b</title>"));
    }

    #[test]
    fn a_clock_reads_hours_minutes_and_seconds_of_the_day() {
        assert_eq!(clock(UnixTime(86_400 * 3 + 3_723)), "01:02:03 UTC");
    }

    #[test]
    fn a_bar_past_capacity_is_red_and_capped() {
        assert!(bar(1.2).contains("#b00020"));
        assert!(bar(9.0).contains("width=\"240.0\""));
        assert!(bar(0.1).contains("#176f2c"));
    }
}
