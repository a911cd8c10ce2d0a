//! Text from records made safe for a terminal.
//!
//! A record's strings come from the sandbox (a SOCKS5 domain, a path, a
//! reason quoting them). Printed raw, `\r\n` plus a fake row forged an
//! `allow` line and `ESC[8m` hid the rest of the real one. Everything
//! `sc audit` prints from a record goes through [`escape`]: C0 controls,
//! DEL, C1 controls, the Unicode line/paragraph separators and bidi controls
//! (U+061C, U+200E/U+200F, U+202A–U+202E, U+2066–U+2069) are shown as
//! visible escapes (`\x1b`, `\r`, `\u{202e}`), and `\` itself as `\\`, so an
//! escape in the output always means the byte was really there.
//!
//! [`json_line`] does the same for `--json`: serde_json escapes C0 controls
//! only, so DEL, C1, separators and bidi controls are written as `\uXXXX`
//! (still valid JSON, the same string once parsed).

use std::fmt::Write;

/// Characters shown as escapes rather than printed.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() // C0, DEL, C1
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unsafe character (and `\`) escaped.
pub fn escape(s: &str) -> String {
    if !s.chars().any(|c| c == '\\' || is_unsafe(c)) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && is_unsafe(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A JSON text with the characters serde_json leaves raw (DEL, C1,
/// separators, bidi controls) as `\uXXXX` escapes. They can only occur
/// inside strings, where the escape means the same character.
pub fn json_line(json: &str) -> String {
    if !json.chars().any(is_unsafe) {
        return json.to_string();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unsafe(c) {
            // Everything here is in the Basic Multilingual Plane.
            let _ = write!(out, "\\u{:04x}", c as u32);
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
}
