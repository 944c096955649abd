//! keepalived.conf: reading the file into the typed [`model`].
//!
//! Three steps, each in its own file: [`lexer`] turns text into tokens
//! with their file and line (comments `#` and `!`, quoted strings,
//! braces); [`tree`] builds the nested blocks and expands `include`
//! (globs, relative to the including file); `build` gives the blocks
//! their meaning, with keepalived's defaults, warnings for keywords it
//! does not act on, and an error with file:line for anything it cannot
//! use. An error means nothing is applied.

mod build;
mod lexer;
pub mod model;
mod tree;

use std::path::Path;

pub use model::{ConfError, Config, Warning};

/// Reads and interprets `path` (and what it includes).
pub fn load(path: &Path) -> Result<(Config, Vec<Warning>), ConfError> {
    let mut ctx = build::Ctx::default();
    let nodes = tree::load_file(path, &mut ctx.warnings)?;
    finish(&nodes, ctx)
}

/// Interprets `text` as the content of a file named `name` (`include`s
/// are relative to `name`'s directory). For tests and `-t`-style checks
/// of text that is not on disk.
pub fn parse_str(text: &str, name: &Path) -> Result<(Config, Vec<Warning>), ConfError> {
    let mut ctx = build::Ctx::default();
    let nodes = tree::load_str(text, name, &mut ctx.warnings)?;
    finish(&nodes, ctx)
}

fn finish(nodes: &[tree::Node], mut ctx: build::Ctx) -> Result<(Config, Vec<Warning>), ConfError> {
    let cfg = build::build(nodes, &mut ctx)?;
    Ok((cfg, ctx.warnings))
}
