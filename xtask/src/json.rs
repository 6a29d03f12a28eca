//! A small JSON reader, for Docker's client configuration (`~/.docker/config.json`) and the
//! output of its credential helpers: all this crate reads of JSON. (serde_json would cost more
//! compile time than this crate's own code, and every fresh clone pays it.)

/// A JSON value; numbers, booleans and null are kept as their text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    Object(Vec<(String, Json)>),
    Array(Vec<Json>),
    String(String),
    Scalar(String),
}

impl Json {
    /// The value of `key` when this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
}

/// Parses a whole JSON document.
pub fn parse(text: &str) -> Result<Json, String> {
    let mut p = Parser { chars: text.chars().collect(), at: 0 };
    let value = p.value()?;
    p.space();
    if p.at < p.chars.len() {
        return Err(format!("unexpected `{}` after the value at character {}", p.chars[p.at], p.at));
    }
    Ok(value)
}

/// Quotes a string as JSON.
pub fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn space(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    fn next(&mut self) -> Result<char, String> {
        let c = *self.chars.get(self.at).ok_or("unexpected end of the document")?;
        self.at += 1;
        Ok(c)
    }

    fn expect(&mut self, want: char) -> Result<(), String> {
        self.space();
        match self.next()? {
            c if c == want => Ok(()),
            c => Err(format!("expected `{want}`, found `{c}` at character {}", self.at - 1)),
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.space();
        match self.chars.get(self.at) {
            Some('{') => {
                self.at += 1;
                let mut fields = Vec::new();
                self.space();
                if self.chars.get(self.at) == Some(&'}') {
                    self.at += 1;
                    return Ok(Json::Object(fields));
                }
                loop {
                    self.expect('"')?;
                    let key = self.string()?;
                    self.expect(':')?;
                    fields.push((key, self.value()?));
                    self.space();
                    match self.next()? {
                        ',' => continue,
                        '}' => return Ok(Json::Object(fields)),
                        c => return Err(format!("expected `,` or `}}`, found `{c}` at character {}", self.at - 1)),
                    }
                }
            }
            Some('[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.space();
                if self.chars.get(self.at) == Some(&']') {
                    self.at += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    self.space();
                    match self.next()? {
                        ',' => continue,
                        ']' => return Ok(Json::Array(items)),
                        c => return Err(format!("expected `,` or `]`, found `{c}` at character {}", self.at - 1)),
                    }
                }
            }
            Some('"') => {
                self.at += 1;
                Ok(Json::String(self.string()?))
            }
            Some(_) => {
                let start = self.at;
                while self.chars.get(self.at).is_some_and(|c| c.is_ascii_alphanumeric() || "+-.".contains(*c)) {
                    self.at += 1;
                }
                let word: String = self.chars[start..self.at].iter().collect();
                let number = word.parse::<f64>().is_ok() && !word.starts_with('+');
                if number || ["true", "false", "null"].contains(&word.as_str()) {
                    Ok(Json::Scalar(word))
                } else {
                    Err(format!("unexpected `{word}` at character {start}"))
                }
            }
            None => Err("unexpected end of the document".into()),
        }
    }

    /// The rest of a string whose opening quote was read.
    fn string(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.next()? {
                '"' => return Ok(out),
                '\\' => match self.next()? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let hex: String = (0..4).map(|_| self.next()).collect::<Result<_, _>>()?;
                        let code = u32::from_str_radix(&hex, 16).map_err(|_| format!("bad escape \\u{hex}"))?;
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                    c => out.push(c),
                },
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_docker_client_configuration() {
        let text = r#"{
            "auths": {"127.0.0.1:5999": {"auth": "cnN0ZXN0Onh5"}, "https://index.docker.io/v1/": {}},
            "credsStore": "desktop", "experimental": true, "n": -1.5e3, "list": [1, "a\"b\u00e9", null]
        }"#;
        let json = parse(text).unwrap();
        let auths = json.get("auths").unwrap();
        assert_eq!(auths.get("127.0.0.1:5999").unwrap().get("auth").unwrap().as_str(), Some("cnN0ZXN0Onh5"));
        assert_eq!(auths.get("https://index.docker.io/v1/"), Some(&Json::Object(vec![])));
        assert_eq!(json.get("credsStore").and_then(Json::as_str), Some("desktop"));
        assert_eq!(
            json.get("list"),
            Some(&Json::Array(vec![
                Json::Scalar("1".into()),
                Json::String("a\"bé".into()),
                Json::Scalar("null".into())
            ]))
        );
    }

    #[test]
    fn malformed_documents_are_errors() {
        for bad in ["", "{", r#"{"a" 1}"#, r#"{"a": 1,}"#, "[1 2]", "{} x", "nope", r#""open"#] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn quoting_round_trips() {
        let text = "a\"b\\c\nd\te\u{1}";
        assert_eq!(parse(&quote(text)).unwrap(), Json::String(text.into()));
    }
}
