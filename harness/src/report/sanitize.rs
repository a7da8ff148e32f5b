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

/// `clean` then `cap`. A text far over the cap is cut before it is cleaned (only its ends
/// survive, and cleaning never lengthens text), so a 20 MB failure costs what 64 KB cost.
pub fn for_report(text: &str, limit: usize) -> String {
    if text.len() <= limit.saturating_mul(4) {
        return cap(&clean(text), limit);
    }
    let head_len = limit / 4;
    let tail_len = limit - head_len;
    // Twice the room on each side leaves space for what cleaning removes.
    let mut head_end = (head_len * 2).min(text.len());
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = text.len().saturating_sub(tail_len * 2).max(head_end);
    while !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    let head = clean(&text[..head_end]);
    let tail = clean(&text[tail_start..]);
    let mut h = head_len.min(head.len());
    while !head.is_char_boundary(h) {
        h -= 1;
    }
    let mut t = tail.len().saturating_sub(tail_len);
    while !tail.is_char_boundary(t) {
        t += 1;
    }
    let cut = text.len() - h - (tail.len() - t);
    format!(
        "{}\n[... about {cut} bytes cut ...]\n{}",
        &head[..h],
        &tail[t..]
    )
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

    #[test]
    fn huge_texts_are_cut_before_cleaning() {
        let text = format!("start\u{1b}[31m{}\u{7}end", "x".repeat(20 * 1024 * 1024));
        let out = for_report(&text, CASE_OUTPUT_CAP);
        assert!(out.len() <= CASE_OUTPUT_CAP + 64, "{}", out.len());
        assert!(out.starts_with("startxxx"), "{}", &out[..20]);
        assert!(out.ends_with("xxxend"));
        assert!(out.contains("bytes cut ...]"));
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'));
    }
}
