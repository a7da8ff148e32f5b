//! Text bound for the JUnit report: ANSI escapes and control characters removed, and capped so
//! that a report of many failing tests stays far below GitLab's 30 MB limit.

/// Most bytes of output kept per test case (`system-out`, failure text).
pub const CASE_OUTPUT_CAP: usize = 64 * 1024;

/// Most bytes of a failure's `message` attribute.
pub const MESSAGE_CAP: usize = 4 * 1024;

/// Strips ANSI escape sequences and control characters other than newline and tab.
pub fn clean(text: &str) -> String {
    let stripped = if text.contains('\u{1b}') {
        // The stripper drops tabs along with the escapes; keep them.
        text.split('\t')
            .map(strip_ansi_escapes::strip_str)
            .collect::<Vec<_>>()
            .join("\t")
    } else {
        text.to_string()
    };
    stripped
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// Keeps the head and the tail of `text` within `cap` bytes, saying how much was cut. The tail
/// gets most of the room: that is where a failure shows.
pub fn cap(text: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text.to_string();
    }
    let head_len = cap / 4;
    let tail_len = cap - head_len;
    let mut head_end = head_len;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len() - tail_len;
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    format!(
        "{}\n[... {} bytes cut ...]\n{}",
        &text[..head_end],
        tail_start - head_end,
        &text[tail_start..]
    )
}

/// `clean` then `cap`.
pub fn for_report(text: &str, limit: usize) -> String {
    cap(&clean(text), limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_escapes_and_controls() {
        assert_eq!(
            clean("\u{1b}[31mred\u{1b}[0m\tok\r\n\u{7}bell\u{0}"),
            "red\tok\nbell"
        );
    }

    #[test]
    fn caps_keeping_head_and_tail() {
        let text = "a".repeat(100) + &"z".repeat(100);
        let c = cap(&text, 40);
        assert!(c.starts_with("aaaaaaaaaa\n[... 160 bytes cut ...]\n"));
        assert!(c.ends_with(&"z".repeat(30)));
        assert_eq!(cap("short", 40), "short");
        let wide = "é".repeat(50);
        let _ = cap(&wide, 11);
    }
}
