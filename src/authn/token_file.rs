//! `--token-auth-file`: static bearer tokens from a CSV file with the columns
//! `token,user,uid[,"group1,group2"]`, as kube-apiserver reads it.
//!
//! Invariant: the file is read once at start; a malformed file stops the server
//! rather than silently authenticating fewer users.

use std::collections::HashMap;
use std::path::Path;

use super::{AuthnError, TokenAuthenticator, TokenResponse, UserInfo};

/// The users of a token file, by token.
#[derive(Debug, Default)]
pub struct TokenFile {
    users: HashMap<String, UserInfo>,
}

impl TokenFile {
    pub fn load(path: &Path) -> Result<TokenFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses the CSV text; `name` names the file in errors.
    pub fn parse(text: &str, name: &str) -> Result<TokenFile, String> {
        let mut users = HashMap::new();
        let mut record_num = 0;
        for (line_num, record) in
            csv_records(text).map_err(|e| format!("token file '{name}': {e}"))?
        {
            if record.len() < 3 {
                return Err(format!(
                    "token file '{name}' must have at least 3 columns (token, user name, user uid), found {} (line {line_num})",
                    record.len()
                ));
            }
            record_num += 1;
            if record[0].is_empty() {
                tracing::warn!(
                    file = name,
                    record = record_num,
                    "empty token in token file"
                );
                continue;
            }
            let mut user = UserInfo {
                name: record[1].clone(),
                uid: record[2].clone(),
                ..Default::default()
            };
            if let Some(groups) = record.get(3) {
                user.groups = groups.split(',').map(str::to_owned).collect();
            }
            if users.insert(record[0].clone(), user).is_some() {
                tracing::warn!(
                    file = name,
                    record = record_num,
                    "duplicate token in token file"
                );
            }
        }
        Ok(TokenFile { users })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[async_trait::async_trait]
impl TokenAuthenticator for TokenFile {
    async fn authenticate_token(
        &self,
        token: &str,
        _audiences: &[String],
    ) -> Result<Option<TokenResponse>, AuthnError> {
        Ok(self.users.get(token).map(|user| TokenResponse {
            user: user.clone(),
            audiences: Vec::new(),
        }))
    }
}

/// RFC 4180 records as Go's encoding/csv reads them: blank lines skipped, fields
/// optionally quoted with `""` as an escaped quote, a variable number of fields.
fn csv_records(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut record_line = 1;
    let mut at_field_start = true;
    let mut in_record = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if at_field_start => {
                in_record = true;
                // A quoted field runs to the next lone quote.
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            field.push(ch);
                        }
                        None => {
                            return Err(format!(
                                "line {record_line}: extraneous or missing \" in quoted-field"
                            ))
                        }
                    }
                }
                at_field_start = false;
                match chars.peek() {
                    Some(',') | Some('\n') | Some('\r') | None => {}
                    Some(_) => {
                        return Err(format!(
                            "line {line}: extraneous or missing \" in quoted-field"
                        ))
                    }
                }
            }
            ',' => {
                in_record = true;
                record.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if in_record {
                    record.push(std::mem::take(&mut field));
                    out.push((record_line, std::mem::take(&mut record)));
                }
                line += 1;
                record_line = line;
                at_field_start = true;
                in_record = false;
            }
            other => {
                if other == '"' {
                    return Err(format!("line {line}: bare \" in non-quoted-field"));
                }
                in_record = true;
                field.push(other);
                at_field_start = false;
            }
        }
    }
    if in_record {
        record.push(field);
        out.push((record_line, record));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_users_groups_and_quoted_fields() {
        let file = TokenFile::parse(
            "abc123,alice,1001,\"dev,ops\"\n\n\"t,2\",bob,1002\r\nplain,carol,\"10\"\"03\",admins\n",
            "tokens.csv",
        )
        .expect("parses");
        assert_eq!(file.len(), 3);
        let alice = file
            .authenticate_token("abc123", &[])
            .await
            .expect("ok")
            .expect("alice");
        assert_eq!(alice.user.name, "alice");
        assert_eq!(alice.user.uid, "1001");
        assert_eq!(alice.user.groups, vec!["dev", "ops"]);
        let bob = file
            .authenticate_token("t,2", &[])
            .await
            .expect("ok")
            .expect("bob");
        assert_eq!((bob.user.name.as_str(), bob.user.groups.len()), ("bob", 0));
        let carol = file
            .authenticate_token("plain", &[])
            .await
            .expect("ok")
            .expect("carol");
        assert_eq!(carol.user.uid, "10\"03");
        assert!(file
            .authenticate_token("nope", &[])
            .await
            .expect("ok")
            .is_none());
    }

    #[test]
    fn refuses_short_records_and_broken_quotes() {
        let e = TokenFile::parse("tok,user\n", "f.csv").unwrap_err();
        assert!(
            e.contains("must have at least 3 columns (token, user name, user uid), found 2"),
            "{e}"
        );
        assert!(TokenFile::parse("\"tok,user,uid\n", "f.csv").is_err());
        assert!(TokenFile::parse("to\"k,user,uid\n", "f.csv").is_err());
    }
}
