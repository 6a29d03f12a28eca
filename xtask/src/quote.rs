//! POSIX shell quoting. ssh joins its arguments with spaces into one string that the remote
//! shell parses again, so every argument of a remote command is quoted here, one by one.
//! The same quoting renders plans as copy-pasteable command lines.

/// Quotes one argument so that a POSIX shell reads it back as exactly one word, unchanged.
pub fn sh(arg: &str) -> String {
    let safe = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Quotes every argument and joins them with spaces: one string for a remote shell.
pub fn sh_join<S: AsRef<str>>(args: &[S]) -> String {
    args.iter().map(|a| sh(a.as_ref())).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NASTY: &[&str] = &[
        "plain",
        "with space",
        "it's",
        "a;b",
        "$(reboot)",
        "`id`",
        "\"double\"",
        "back\\slash",
        "new\nline",
        "*",
        "",
        "-rf",
        "~root",
        "a&&b|c>d",
    ];

    #[test]
    fn safe_words_stay_as_they_are() {
        assert_eq!(sh("recordsponge/expungeservice:staging-0123abc"), "recordsponge/expungeservice:staging-0123abc");
        assert_eq!(sh("--log-opt=syslog-facility=local1"), "--log-opt=syslog-facility=local1");
    }

    #[test]
    fn metacharacters_are_quoted() {
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(sh("$(reboot)"), "'$(reboot)'");
        assert_eq!(sh(""), "''");
        assert_eq!(sh_join(&["docker", "rm", "a b;c"]), "docker rm 'a b;c'");
    }

    /// A real POSIX shell (what ssh hands the remote command to) reads every argument back unchanged.
    #[test]
    fn a_shell_reads_every_quoted_argument_back_unchanged() {
        let script = format!("printf '%s\\0' {}", sh_join(NASTY));
        let out = std::process::Command::new("sh").arg("-c").arg(&script).output().unwrap();
        assert!(out.status.success());
        let words: Vec<String> =
            out.stdout.split(|b| *b == 0).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
        assert_eq!(&words[..NASTY.len()], NASTY);
        assert_eq!(words.len(), NASTY.len() + 1, "one trailing empty piece after the last NUL");
    }
}
