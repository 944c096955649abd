//! keepalived.conf text → tokens, each with the file and line it was on.
//!
//! keepalived's rules: tokens are separated by white space; `{` and `}`
//! are tokens of their own even when glued to a word (`url{`); `#` and
//! `!` outside a quoted string start a comment that runs to the end of
//! the line; a double-quoted string is one token (quotes removed) that may
//! hold spaces, `#`, `!` and braces. A quote must close on its own line.
//! Line ends are kept (through [`Token::loc`]) because a statement ends
//! at the end of its line.

use std::path::Path;

use super::model::{ConfError, Loc};

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokKind {
    /// A word or a quoted string.
    Word,
    /// `{` (unquoted).
    Open,
    /// `}` (unquoted).
    Close,
}

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// What it is.
    pub(crate) kind: TokKind,
    /// Its text, quotes removed (`{` / `}` for braces).
    pub(crate) text: String,
    /// Where it starts.
    pub(crate) loc: Loc,
}

#[cfg(test)]
impl Token {
    /// A bare word with no location, for tests of value parsers.
    pub(crate) fn word(s: &str) -> Token {
        Token {
            kind: TokKind::Word,
            text: s.into(),
            loc: Loc::default(),
        }
    }
}

/// Splits `text` (the content of `file`) into tokens.
pub(crate) fn lex(text: &str, file: &Path) -> Result<Vec<Token>, ConfError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let loc = Loc {
            file: file.to_path_buf(),
            line: u32::try_from(i + 1).unwrap_or(u32::MAX),
        };
        lex_line(line, &loc, &mut out)?;
    }
    Ok(out)
}

/// Tokens of one line, appended to `out`.
fn lex_line(line: &str, loc: &Loc, out: &mut Vec<Token>) -> Result<(), ConfError> {
    // The word being read: `Some` once a character or a quote was seen, so
    // `""` is an empty word, not nothing.
    let mut word: Option<String> = None;
    let mut quoted = false;
    let flush = |word: &mut Option<String>, out: &mut Vec<Token>| {
        if let Some(text) = word.take() {
            out.push(Token {
                kind: TokKind::Word,
                text,
                loc: loc.clone(),
            });
        }
    };
    for c in line.chars() {
        if quoted {
            if c == '"' {
                quoted = false;
            } else {
                word.get_or_insert_with(String::new).push(c);
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                word.get_or_insert_with(String::new);
            }
            '#' | '!' => break,
            '{' | '}' => {
                flush(&mut word, out);
                out.push(Token {
                    kind: if c == '{' {
                        TokKind::Open
                    } else {
                        TokKind::Close
                    },
                    text: c.to_string(),
                    loc: loc.clone(),
                });
            }
            c if c.is_whitespace() => flush(&mut word, out),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quoted {
        return Err(ConfError {
            loc: loc.clone(),
            message: "unterminated quoted string (a quote must close on its line)".into(),
        });
    }
    flush(&mut word, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<(TokKind, String, u32)> {
        lex(text, Path::new("t.conf"))
            .unwrap()
            .into_iter()
            .map(|t| (t.kind, t.text, t.loc.line))
            .collect()
    }

    fn w(s: &str, line: u32) -> (TokKind, String, u32) {
        (TokKind::Word, s.into(), line)
    }

    #[test]
    fn braces_are_tokens_even_glued() {
        assert_eq!(
            words("url{path /}\n"),
            vec![
                w("url", 1),
                (TokKind::Open, "{".into(), 1),
                w("path", 1),
                w("/", 1),
                (TokKind::Close, "}".into(), 1),
            ]
        );
    }

    #[test]
    fn comments_run_to_end_of_line() {
        assert_eq!(
            words("a b # c d\n! e\nf!g\nh#i\n  j"),
            vec![w("a", 1), w("b", 1), w("f", 3), w("h", 4), w("j", 5)]
        );
    }

    #[test]
    fn quoted_strings_keep_spaces_comment_chars_and_braces() {
        assert_eq!(
            words("misc_path \"/bin/check -x # ! {}\" tail\n\"\" x\"y z\"w"),
            vec![
                w("misc_path", 1),
                w("/bin/check -x # ! {}", 1),
                w("tail", 1),
                w("", 2),
                w("xy zw", 2),
            ]
        );
    }

    #[test]
    fn unterminated_quote_names_its_line() {
        let e = lex("a\nb \"c\nd\"", Path::new("x.conf")).unwrap_err();
        assert_eq!(e.loc.line, 2);
        assert_eq!(e.loc.file, Path::new("x.conf"));
    }

    #[test]
    fn crlf_and_tabs() {
        assert_eq!(
            words("a\tb\r\nc\r\n"),
            vec![w("a", 1), w("b", 1), w("c", 2)]
        );
    }
}
