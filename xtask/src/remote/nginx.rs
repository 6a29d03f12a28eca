//! nginx on a host: the upstream file a deploy writes and reads, its workers, whether sudo
//! lets the deploy user run its commands, and the certificate it serves.

use super::ssh::words;

/// How many days a certificate must have left, or `doctor` fails: Let's Encrypt's own renewal
/// runs at 30, so a certificate under 14 has missed two weeks of tries.
pub const CERTIFICATE_DAYS: i64 = 14;

/// The words that print, on the host, the end of the certificate nginx serves for `domain` (on
/// 443), then that time and the present as seconds since 1970: three lines.
pub fn certificate_end(domain: &str) -> Vec<String> {
    let script = r#"end=$(openssl s_client -connect 127.0.0.1:443 -servername "$0" < /dev/null 2> /dev/null | openssl x509 -noout -enddate) && end=${end#notAfter=} && echo "$end" && date -d "$end" +%s && date +%s"#;
    words(&["sh", "-c", script, domain])
}

/// Whether the certificate has `CERTIFICATE_DAYS` left, from `certificate_end`'s lines: how many
/// days it has, or why not.
pub fn certificate_days(lines: &str) -> Result<i64, String> {
    let lines: Vec<&str> = lines.lines().map(str::trim).collect();
    let [end, at, now] = lines[..] else { return Err(format!("no certificate read: {lines:?}")) };
    let (Ok(at), Ok(now)) = (at.parse::<i64>(), now.parse::<i64>()) else {
        return Err(format!("no certificate read: {lines:?}"));
    };
    let days = (at - now).div_euclid(86400);
    if days < CERTIFICATE_DAYS {
        return Err(format!("it ends on {end}: {days} days left, under {CERTIFICATE_DAYS}"));
    }
    Ok(days)
}

/// The upstream file's text: `upstream NAME { server 127.0.0.1:PORT; }` (PORT may be a plan
/// variable such as `%{new_port}`).
pub fn upstream(name: &str, port: &str) -> String {
    format!("upstream {name} {{ server 127.0.0.1:{port}; }}\n")
}

/// The upstream file with no server to proxy to (before the first deploy): nginx answers 502.
pub fn upstream_down(name: &str) -> String {
    format!("upstream {name} {{ server 127.0.0.1:9 down; }}\n")
}

/// Whether `text` is an upstream file a deploy writes, and nothing else: `upstream NAME {
/// server 127.0.0.1:PORT; }` (or `... down; }`), whatever the spacing. nginx includes the file
/// in its http context as root: anything more (an `access_log` that creates a file) is refused.
pub fn is_upstream(text: &str, name: &str) -> bool {
    let spaced = text.replace(';', " ; ").replace('{', " { ").replace('}', " } ");
    let words: Vec<&str> = spaced.split_whitespace().collect();
    let port = |w: &str| w.strip_prefix("127.0.0.1:").is_some_and(|p| p.parse::<u16>().is_ok());
    match words.as_slice() {
        ["upstream", n, "{", "server", address, ";", "}"] => *n == name && port(address),
        ["upstream", n, "{", "server", address, "down", ";", "}"] => *n == name && port(address),
        _ => false,
    }
}

/// The port of `server 127.0.0.1:PORT;` in an nginx upstream file (none for a server marked
/// `down`, as the upstream is before the first deploy).
pub fn upstream_port(text: &str) -> Option<u16> {
    let after = text.split("server").nth(1)?;
    let mut words =
        after.split(|c: char| c == ';' || c.is_whitespace()).take_while(|w| *w != "}").filter(|w| !w.is_empty());
    let port = words.next()?.rsplit(':').next()?.parse().ok();
    if words.any(|w| w == "down") {
        return None;
    }
    port
}

/// nginx's processes, one command line each: an old worker finishing its requests after a
/// reload says `shutting down`.
pub fn workers() -> Vec<String> {
    words(&["ps", "-C", "nginx", "-o", "args="])
}

/// nginx's processes with their age, for a wait that gives up.
pub fn workers_in_detail() -> Vec<String> {
    words(&["ps", "-C", "nginx", "-o", "pid,etime,args"])
}

/// What an old worker says while it finishes its requests.
pub const SHUTTING_DOWN: &str = "shutting down";

/// `sudo -n -l COMMAND`: whether sudo allows COMMAND without a password, without running it.
/// None when the command does not go through sudo.
pub fn sudo_list(command: &[String]) -> Option<Vec<String>> {
    let (first, rest) = command.split_first()?;
    if first != "sudo" {
        return None;
    }
    let options = rest.iter().take_while(|a| a.starts_with('-')).count();
    let mut list = words(&["sudo", "-n", "-l"]);
    list.extend(rest[options..].iter().cloned());
    Some(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_passes_with_fourteen_days_left_and_fails_under() {
        let now = 1_800_000_000;
        let lines = |days: i64| format!("Mar  4 12:00:00 2027 GMT\n{}\n{now}\n", now + days * 86400 + 60);
        assert_eq!(certificate_days(&lines(89)), Ok(89));
        assert_eq!(certificate_days(&lines(14)), Ok(14));
        assert_eq!(
            certificate_days(&lines(13)),
            Err("it ends on Mar  4 12:00:00 2027 GMT: 13 days left, under 14".into())
        );
        assert!(certificate_days(&lines(-2)).unwrap_err().contains("-2 days left"));
        assert!(certificate_days("").unwrap_err().starts_with("no certificate read"));
        assert_eq!(certificate_end("a.example")[..2], ["sh", "-c"]);
        assert_eq!(certificate_end("a.example")[3], "a.example");
    }

    #[test]
    fn the_upstream_names_one_loopback_port_which_is_read_back() {
        let text = upstream("recordsponge_staging", "3033");
        assert_eq!(text, "upstream recordsponge_staging { server 127.0.0.1:3033; }\n");
        assert_eq!(upstream_port(&text), Some(3033));
        assert_eq!(upstream_port("upstream x {\n  server 127.0.0.1:3040 max_fails=0;\n}\n"), Some(3040));
        assert_eq!(upstream_port("# nothing yet\n"), None);
        assert_eq!(upstream_port("upstream recordsponge_staging { server 127.0.0.1:9 down; }\n"), None);
    }

    #[test]
    fn an_upstream_file_is_only_what_a_deploy_writes() {
        let name = "recordsponge_staging";
        assert!(is_upstream(&upstream(name, "3033"), name));
        assert!(is_upstream(&upstream_down(name), name));
        assert!(is_upstream("upstream recordsponge_staging {\n  server 127.0.0.1:3032;\n}\n", name));
        for hostile in [
            "upstream recordsponge_staging { server 127.0.0.1:3033; }\naccess_log /tmp/pwned main;\n",
            "upstream recordsponge_staging { server 10.0.0.9:3033; }",
            "upstream recordsponge_prod { server 127.0.0.1:3033; }",
            "upstream recordsponge_staging { server 127.0.0.1:3033 max_fails=0; }",
            "upstream recordsponge_staging { server 127.0.0.1:99999; }",
            "",
        ] {
            assert!(!is_upstream(hostile, name), "{hostile}");
        }
    }

    #[test]
    fn sudo_is_asked_whether_it_allows_a_command_without_running_it() {
        assert_eq!(
            sudo_list(&words(&["sudo", "-n", "nginx", "-s", "reload"])).unwrap(),
            words(&["sudo", "-n", "-l", "nginx", "-s", "reload"])
        );
        assert_eq!(sudo_list(&words(&["nginx", "-s", "reload"])), None);
        assert_eq!(workers(), ["ps", "-C", "nginx", "-o", "args="]);
        assert_eq!(workers_in_detail(), ["ps", "-C", "nginx", "-o", "pid,etime,args"]);
    }
}
