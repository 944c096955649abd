//! Tokens → nested statements, with `include` expanded.
//!
//! A statement is `keyword args...`, ended by the end of its line or by a
//! brace, optionally followed by a block `{ statements }` (the `{` may be
//! on the same line or start a following one, as keepalived accepts).
//! Braces must balance within each file: an error names the unclosed `{`
//! or the stray `}`.
//!
//! `include PATTERN` may appear at any level and is replaced by the
//! statements of the files the glob matches (in name order), relative to
//! the including file's directory unless absolute. A pattern matching no
//! file is a warning (keepalived's behaviour); includes nested deeper
//! than [`MAX_INCLUDE_DEPTH`], blocks nested deeper than
//! [`MAX_NESTING`], or a file including itself is an error.

use std::path::{Path, PathBuf};

use super::lexer::{TokKind, Token, lex};
use super::model::{ConfError, Loc, Warning};

/// How deep includes may nest (the top file is depth 0).
pub(crate) const MAX_INCLUDE_DEPTH: usize = 8;

/// How deep blocks may nest, included files counted where they are
/// included (keepalived's deepest, `url` in a checker in a
/// `real_server` in a `virtual_server`, is 4; the bound keeps a
/// malformed file from exhausting the reader's stack).
pub(crate) const MAX_NESTING: usize = 32;

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// The first word.
    pub(crate) keyword: Token,
    /// The words after it on its line.
    pub(crate) args: Vec<Token>,
    /// Its `{ ... }`, if it has one.
    pub(crate) block: Option<Vec<Node>>,
}

impl Node {
    /// The keyword's text.
    pub(crate) fn name(&self) -> &str {
        &self.keyword.text
    }

    /// Where the statement starts.
    pub(crate) fn loc(&self) -> &Loc {
        &self.keyword.loc
    }
}

/// Builds an error at `loc`.
pub(crate) fn err(loc: &Loc, message: impl Into<String>) -> ConfError {
    ConfError {
        loc: loc.clone(),
        message: message.into(),
    }
}

/// Reads `path` and what it includes into statements.
pub(crate) fn load_file(path: &Path, warnings: &mut Vec<Warning>) -> Result<Vec<Node>, ConfError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        err(
            &Loc {
                file: path.to_path_buf(),
                line: 0,
            },
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let mut loader = Loader {
        warnings,
        stack: vec![canonical(path)],
    };
    loader.parse_text(&text, path, 0)
}

/// Parses `text` as if read from `name` (includes are relative to
/// `name`'s directory).
pub(crate) fn load_str(
    text: &str,
    name: &Path,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<Node>, ConfError> {
    let mut loader = Loader {
        warnings,
        stack: vec![canonical(name)],
    };
    loader.parse_text(text, name, 0)
}

/// The absolute, resolved form of `path` if it exists (for cycle
/// detection), else `path` itself.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Include state: the chain of files being read.
struct Loader<'w> {
    warnings: &'w mut Vec<Warning>,
    /// Files being read, outermost first (canonical paths).
    stack: Vec<PathBuf>,
}

/// A cursor over one file's tokens.
struct Cursor {
    tokens: Vec<Token>,
    pos: usize,
}

impl Cursor {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }
}

impl Loader<'_> {
    /// The statements of `file`'s `text`, read at block depth `depth`.
    fn parse_text(
        &mut self,
        text: &str,
        file: &Path,
        depth: usize,
    ) -> Result<Vec<Node>, ConfError> {
        let mut cur = Cursor {
            tokens: lex(text, file)?,
            pos: 0,
        };
        self.parse_seq(&mut cur, file, None, depth)
    }

    /// Statements up to the end of the file (`open` None) or up to the `}`
    /// closing the `{` at `open`; `depth` blocks enclose them.
    fn parse_seq(
        &mut self,
        cur: &mut Cursor,
        file: &Path,
        open: Option<&Loc>,
        depth: usize,
    ) -> Result<Vec<Node>, ConfError> {
        let mut nodes = Vec::new();
        loop {
            let Some(tok) = cur.next() else {
                return match open {
                    Some(loc) => Err(err(loc, "`{` is never closed")),
                    None => Ok(nodes),
                };
            };
            match tok.kind {
                TokKind::Close if open.is_some() => return Ok(nodes),
                TokKind::Close => return Err(err(&tok.loc, "`}` closes no block")),
                TokKind::Open => return Err(err(&tok.loc, "`{` without a keyword before it")),
                TokKind::Word => {}
            }
            let mut args = Vec::new();
            while let Some(t) = cur.peek() {
                if t.kind != TokKind::Word || t.loc.line != tok.loc.line {
                    break;
                }
                args.extend(cur.next());
            }
            let block = match cur.peek() {
                Some(t) if t.kind == TokKind::Open => {
                    let open_loc = t.loc.clone();
                    if depth >= MAX_NESTING {
                        return Err(err(
                            &open_loc,
                            format!("blocks nested more than {MAX_NESTING} deep"),
                        ));
                    }
                    cur.next();
                    Some(self.parse_seq(cur, file, Some(&open_loc), depth + 1)?)
                }
                _ => None,
            };
            let node = Node {
                keyword: tok,
                args,
                block,
            };
            if node.name() == "include" {
                nodes.extend(self.include(&node, file, depth)?);
            } else {
                nodes.push(node);
            }
        }
    }

    /// The statements of the files `include` names, read at `depth`.
    fn include(&mut self, node: &Node, file: &Path, depth: usize) -> Result<Vec<Node>, ConfError> {
        let loc = node.loc();
        if node.block.is_some() {
            return Err(err(loc, "`include` takes no block"));
        }
        let [pattern] = node.args.as_slice() else {
            return Err(err(loc, "`include` takes exactly one file name or pattern"));
        };
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            return Err(err(
                loc,
                format!("includes nested more than {MAX_INCLUDE_DEPTH} deep"),
            ));
        }
        let full = if Path::new(&pattern.text).is_absolute() {
            pattern.text.clone()
        } else {
            let dir = file.parent().unwrap_or(Path::new(""));
            let dir = dir.to_string_lossy();
            let dir = if dir.is_empty() { ".".into() } else { dir };
            format!("{}/{}", glob::Pattern::escape(&dir), pattern.text)
        };
        let paths = glob::glob(&full)
            .map_err(|e| err(loc, format!("bad include pattern `{}`: {e}", pattern.text)))?;
        let mut nodes = Vec::new();
        let mut matched = false;
        for entry in paths {
            let path = entry.map_err(|e| err(loc, format!("include `{}`: {e}", pattern.text)))?;
            if path.is_dir() {
                continue;
            }
            matched = true;
            nodes.extend(self.include_file(&path, loc, depth)?);
        }
        if !matched {
            self.warnings.push(Warning {
                loc: loc.clone(),
                message: format!("include `{}` matches no file", pattern.text),
            });
        }
        Ok(nodes)
    }

    /// Reads one included file.
    fn include_file(
        &mut self,
        path: &Path,
        loc: &Loc,
        depth: usize,
    ) -> Result<Vec<Node>, ConfError> {
        let canon = canonical(path);
        if self.stack.contains(&canon) {
            return Err(err(
                loc,
                format!("include cycle: {} is already being read", path.display()),
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(loc, format!("cannot read {}: {e}", path.display())))?;
        self.stack.push(canon);
        let nodes = self.parse_text(&text, path, depth);
        self.stack.pop();
        nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Node>, ConfError> {
        load_str(text, Path::new("t.conf"), &mut Vec::new())
    }

    /// A compact picture of a tree: `kw(args)[children]`.
    fn show(nodes: &[Node]) -> String {
        nodes
            .iter()
            .map(|n| {
                let args: Vec<&str> = n.args.iter().map(|a| a.text.as_str()).collect();
                let mut s = format!("{}@{}({})", n.name(), n.loc().line, args.join(","));
                if let Some(b) = &n.block {
                    s.push_str(&format!("[{}]", show(b)));
                }
                s
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn statements_end_at_line_end_or_brace() {
        let t = parse("a 1 2\nb { c 3\n d } e\nf{g}h").unwrap();
        assert_eq!(
            show(&t),
            "a@1(1,2) b@2()[c@2(3) d@3()] e@3() f@4()[g@4()] h@4()"
        );
    }

    #[test]
    fn open_brace_on_next_line_belongs_to_the_statement() {
        let t = parse("vrrp_instance VI_1\n{\n  state MASTER\n}\n").unwrap();
        assert_eq!(show(&t), "vrrp_instance@1(VI_1)[state@3(MASTER)]");
    }

    #[test]
    fn unclosed_brace_names_the_opening_line() {
        let e = parse("a {\n b {\n }\n").unwrap_err();
        assert_eq!(e.loc.line, 1);
        assert!(e.message.contains("never closed"), "{e}");
    }

    #[test]
    fn stray_close_names_its_line() {
        let e = parse("a { }\n}\n").unwrap_err();
        assert_eq!(e.loc.line, 2);
    }

    #[test]
    fn nesting_is_bounded() {
        // Deep enough to overflow the stack of a recursive reader: refused
        // at the first block too deep, not a crash.
        let deep = "a {\n".repeat(200_000);
        let e = parse(&deep).unwrap_err();
        assert_eq!(e.loc.line, MAX_NESTING as u32 + 1);
        assert!(e.message.contains("nested"), "{e}");
        // keepalived's deepest blocks are well within the bound.
        let ok = "a {\n".repeat(MAX_NESTING) + &"}\n".repeat(MAX_NESTING);
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn brace_without_keyword() {
        assert_eq!(parse("a { }\n{ b }").unwrap_err().loc.line, 2);
    }
}
