//! Text from records made safe for a terminal.
//!
//! A record's strings come from the sandbox (a SOCKS5 domain, a path, a
//! reason quoting them). Printed raw, `\r\n` plus a fake row forged an
//! `allow` line, `ESC[8m` hid the rest of the real one, and zero-width or
//! format characters made two different hosts print alike. Everything
//! `sc audit` prints from a record goes through [`escape`] (or [`field`]):
//! every character that renders invisibly, moves the cursor or reorders
//! text is shown as a visible escape (`\x1b`, `\r`, `\u{200b}`), and `\`
//! itself as `\\`, so an escape in the output always means the character
//! was really there. The rule is by Unicode general category ([`is_unsafe`]):
//! controls (Cc), format characters (Cf: zero-width spaces and joiners, word
//! joiner, BOM, soft hyphen, bidi controls, tag characters, …), line and
//! paragraph separators (Zl, Zp), spaces other than U+0020 (Zs), private
//! use (Co), surrogates (Cs) and unassigned code points (Cn, as of the
//! table's Unicode version: a character assigned later is escaped too);
//! plus the invisible characters filed elsewhere: the combining grapheme
//! joiner (U+034F), variation selectors, and the Hangul fillers
//! (U+115F, U+1160, U+3164, U+FFA0).
//!
//! [`field`] is the table's form of a free-text field: escaped, runs of
//! spaces and tabs shown as one space (a field padded with spaces cannot
//! push a fake row onto a line of its own), and clipped to a width with
//! `…`. The full value stays in `--json`.
//!
//! [`json_line`] does the same for `--json`: serde_json escapes C0 controls
//! only, so every other unsafe character is written as `\uXXXX` (a
//! surrogate pair beyond the Basic Multilingual Plane; still valid JSON,
//! the same string once parsed).

use std::fmt::Write;

use unicode_general_category::{get_general_category, GeneralCategory as G};

/// Characters shown as escapes rather than printed.
pub fn is_unsafe(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    matches!(
        get_general_category(c),
        G::Control | G::Format | G::LineSeparator | G::ParagraphSeparator | G::SpaceSeparator | G::PrivateUse | G::Surrogate | G::Unassigned
    ) || matches!(c,
        '\u{034f}'                      // combining grapheme joiner
        | '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}' // Hangul fillers
        | '\u{180b}'..='\u{180f}'       // Mongolian free variation selectors (and U+180E)
        | '\u{fe00}'..='\u{fe0f}'       // variation selectors
        | '\u{e0100}'..='\u{e01ef}'     // variation selectors supplement
        | '\u{2800}'                    // braille blank
    )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_ascii() && is_unsafe(c) => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if is_unsafe(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// `s` with every unsafe character (and `\`) escaped.
pub fn escape(s: &str) -> String {
    if !s.chars().any(|c| c == '\\' || is_unsafe(c)) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out
}

/// A free-text field for the table: escaped as by [`escape`], each run of
/// spaces and tabs shown as one space, and at most `width` characters
/// (an escape is never cut; a clipped field ends in `…`).
pub fn field(s: &str, width: usize) -> String {
    let width = width.max(1);
    let mut out = String::new();
    let mut n = 0;
    let mut piece = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        piece.clear();
        if c == ' ' || c == '\t' {
            while chars.peek().is_some_and(|&d| d == ' ' || d == '\t') {
                chars.next();
            }
            piece.push(' ');
        } else {
            push_escaped(&mut piece, c);
        }
        let len = piece.chars().count();
        // Room for this piece, and for `…` if more follows.
        let more = chars.peek().is_some();
        if n + len > width || (more && n + len == width) {
            out.push('…');
            return out;
        }
        out.push_str(&piece);
        n += len;
    }
    out
}

/// A JSON text with the unsafe characters serde_json leaves raw as
/// `\uXXXX` escapes. They can only occur inside strings, where the escape
/// means the same character.
pub fn json_line(json: &str) -> String {
    if !json.chars().any(is_unsafe) {
        return json.to_string();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unsafe(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{:04x}", u);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_escapes_and_bidi_are_made_visible() {
        let forged = "evil.test\r\n    99  2026-01-01 00:00:00  net        allow    -  ok\x1b[8m hidden \u{202e}txt.exe\u{9b}\u{7f}\\x1b";
        let e = escape(forged);
        assert_eq!(e, "evil.test\\r\\n    99  2026-01-01 00:00:00  net        allow    -  ok\\x1b[8m hidden \\u{202e}txt.exe\\u{9b}\\x7f\\\\x1b");
        assert!(!e.chars().any(is_unsafe));
        assert_eq!(escape("plain ünïcödé ok"), "plain ünïcödé ok");
        for c in ['\u{061c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{2066}', '\u{2069}', '\u{2028}', '\u{85}'] {
            assert!(escape(&c.to_string()).starts_with("\\u{"), "{c:?}");
        }
    }

    #[test]
    fn json_lines_stay_json_and_carry_no_raw_controls() {
        let v = serde_json::json!({"host": "a\u{1b}[8m\u{202e}\u{85}\u{7f}b\r\n"});
        let line = json_line(&serde_json::to_string(&v).unwrap());
        assert!(!line.chars().any(is_unsafe), "{line}");
        assert!(line.contains("\\u202e") && line.contains("\\u001b"), "{line}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&line).unwrap(), v);
    }

    /// The invisible characters of the review, each by its rule.
    const INVISIBLE: &[char] = &[
        '\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}', '\u{2061}', '\u{2062}', '\u{2063}', '\u{2064}', '\u{feff}', '\u{ad}', '\u{180e}', '\u{34f}',
        '\u{e0000}', '\u{e0001}', '\u{e0041}', '\u{e007f}', '\u{fe00}', '\u{fe0f}', '\u{e0100}', '\u{e01ef}', '\u{115f}', '\u{1160}', '\u{3164}', '\u{ffa0}',
        '\u{2028}', '\u{2029}', '\u{a0}', '\u{3000}', '\u{e000}', '\u{f0000}', '\u{10ffff}', '\u{378}', '\u{1d173}', '\u{2800}',
    ];

    #[test]
    fn invisible_and_format_characters_are_escaped_by_rule() {
        for &c in INVISIBLE {
            assert!(is_unsafe(c), "{c:?}");
            let e = escape(&format!("a{c}b"));
            assert_eq!(e, format!("a\\u{{{:x}}}b", c as u32));
            let f = field(&format!("a{c}b"), 120);
            assert_eq!(f, e);
            let v = serde_json::json!({ "host": format!("a{c}b") });
            let line = json_line(&serde_json::to_string(&v).unwrap());
            assert!(line.is_ascii(), "{line}");
            assert_eq!(serde_json::from_str::<serde_json::Value>(&line).unwrap(), v);
        }
        // Ordinary text, including other scripts and emoji, is untouched.
        for s in ["plain ünïcödé ok", "日本語のパス", "Ελληνικά", "🦈 shark", "é"] {
            assert_eq!(escape(s), s);
        }
    }

    #[test]
    fn fields_collapse_runs_of_blanks_and_are_clipped() {
        let fake = "    77  2026-01-01 00:00:00  net        allow    -  connect bank.test:443";
        let padded = format!("x.test{}{fake}", " ".repeat(500));
        let f = field(&padded, 120);
        assert_eq!(f, format!("x.test {}", fake.split_whitespace().collect::<Vec<_>>().join(" ")));
        assert_eq!(field("a \t \t b", 10), "a b");
        let long = "h".repeat(500);
        let f = field(&long, 120);
        assert_eq!(f.chars().count(), 120);
        assert!(f.ends_with('…'));
        assert_eq!(field(&"h".repeat(120), 120), "h".repeat(120));
        // An escape is never cut in half.
        let f = field(&format!("{}\u{200b}tail", "h".repeat(115)), 120);
        assert_eq!(f, format!("{}…", "h".repeat(115)));
    }
}
