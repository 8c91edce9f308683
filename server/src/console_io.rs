//! Small helpers of the console commands (`doorstep …`): reading secrets and personal values
//! without the command line, and writing personal data to files only their owner can read.

use anyhow::Context;
use std::path::PathBuf;

/// The first line of `file`, or of stdin (with a prompt naming `what`): how secrets and
/// personal values reach the console without the command line (shell history, process list).
pub fn first_line(file: Option<PathBuf>, what: &str) -> anyhow::Result<String> {
    let text = match file {
        Some(f) => {
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?
        }
        None => {
            eprintln!("{what} (one line on stdin):");
            let mut s = String::new();
            std::io::stdin().read_line(&mut s)?;
            s
        }
    };
    Ok(text.lines().next().unwrap_or("").to_owned())
}

/// A new file readable by its owner only (for an export of personal data); refused if it
/// exists.
pub fn create_private(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))
}
