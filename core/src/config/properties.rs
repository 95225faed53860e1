//! Java `.properties` parsing, as far as `server.properties` files use it: `key=value`,
//! `key: value` or `key value`; `#` and `!` comment lines; a trailing `\` continues a line;
//! `\t \n \r \f \\ \uXXXX` escapes. Later keys override earlier ones, as in Java.

use std::collections::BTreeMap;

/// A line longer than this is refused: no configuration value needs it, and the limit keeps a
/// wrong file (a binary passed by mistake) from growing one huge string.
const LINE_BYTES_MAX: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PropertiesError {
    #[error("line {line}: longer than {LINE_BYTES_MAX} bytes")]
    LineTooLong { line: usize },
    #[error("line {line}: bad escape sequence")]
    BadEscape { line: usize },
}

pub fn parse(text: &str) -> Result<BTreeMap<String, String>, PropertiesError> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    let mut start_line = 0;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        if raw.len() > LINE_BYTES_MAX || logical.len() > LINE_BYTES_MAX {
            return Err(PropertiesError::LineTooLong { line: line_no });
        }
        let trimmed = raw.trim_start();
        if logical.is_empty() {
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
                continue;
            }
            start_line = line_no;
        }
        // An odd number of trailing backslashes continues the logical line.
        let trailing = trimmed.chars().rev().take_while(|&c| c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&trimmed[..trimmed.len() - 1]);
            continue;
        }
        logical.push_str(trimmed);
        let (key, value) = split_key_value(&logical);
        out.insert(unescape(key, start_line)?, unescape(value, start_line)?);
        logical.clear();
    }
    if !logical.is_empty() {
        let (key, value) = split_key_value(&logical);
        out.insert(unescape(key, start_line)?, unescape(value, start_line)?);
    }
    Ok(out)
}

fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' => break,
            _ => i += 1,
        }
    }
    let key_end = i.min(bytes.len());
    let rest = line[key_end..].trim_start_matches([' ', '\t']);
    let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest).trim_start_matches([' ', '\t']);
    (&line[..key_end], rest.trim_end())
}

fn unescape(s: &str, line: usize) -> Result<String, PropertiesError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16).map_err(|_| PropertiesError::BadEscape { line })?;
                out.push(char::from_u32(code).ok_or(PropertiesError::BadEscape { line })?);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_courses_server_properties_shapes() {
        let text = "# comment\n! also\nprocess.roles=broker,controller\nnode.id = 1\n\
                    listeners: PLAINTEXT://:9092,CONTROLLER://:9093\nlog.dirs /tmp/a\\\n   b\n\
                    key\\=with\\:seps=v\\u0041\n";
        let p = parse(text).unwrap();
        assert_eq!(p["process.roles"], "broker,controller");
        assert_eq!(p["node.id"], "1");
        assert_eq!(p["listeners"], "PLAINTEXT://:9092,CONTROLLER://:9093");
        assert_eq!(p["log.dirs"], "/tmp/ab");
        assert_eq!(p["key=with:seps"], "vA");
    }

    #[test]
    fn later_keys_win_and_bad_escapes_are_errors() {
        let p = parse("a=1\na=2\n").unwrap();
        assert_eq!(p["a"], "2");
        assert_eq!(parse("a=\\uZZZZ\n"), Err(PropertiesError::BadEscape { line: 1 }));
    }
}
