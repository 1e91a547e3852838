//! Who may connect: PostgreSQL users (SCRAM-SHA-256 password authentication) and
//! HTTP bearer tokens or Basic credentials, all from the server configuration.
//! With no credentials configured (allowed on loopback only) everyone may connect.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use pgwire::api::auth::sasl::scram::{gen_salted_password, SCRAM_ITERATIONS};
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::PgWireResult;
use subtle::ConstantTimeEq;

use super::config::{Credential, Settings};

#[derive(Debug)]
pub struct Accounts {
    /// user → (salt, salted password), computed once at start-up.
    users: HashMap<String, (Vec<u8>, Vec<u8>)>,
    passwords: HashMap<String, String>,
    tokens: Vec<Credential>,
    required: bool,
    /// Answers SCRAM for unknown users, so they fail like a wrong password.
    decoy: (Vec<u8>, Vec<u8>),
}

impl Accounts {
    pub fn new(settings: &Settings) -> Arc<Self> {
        let salted = |password: &str| {
            let salt: [u8; 16] = rand::random();
            let hash = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
            (salt.to_vec(), hash)
        };
        let users = settings
            .users
            .iter()
            .map(|u| (u.name.clone(), salted(&u.secret)))
            .collect();
        let passwords = settings
            .users
            .iter()
            .map(|u| (u.name.clone(), u.secret.clone()))
            .collect();
        let decoy_password: [u8; 24] = rand::random();
        Arc::new(Accounts {
            users,
            passwords,
            tokens: settings.tokens.clone(),
            required: settings.auth_required(),
            decoy: salted(&base64::engine::general_purpose::STANDARD.encode(decoy_password)),
        })
    }

    /// Whether PostgreSQL clients must give a password.
    pub fn pg_required(&self) -> bool {
        !self.users.is_empty()
    }

    /// Checks an HTTP `Authorization` header; returns who is asking.
    pub fn http(&self, header: Option<&str>) -> Result<String, &'static str> {
        if !self.required {
            return Ok("anonymous".into());
        }
        let Some(header) = header else {
            return Err("authentication required: send Authorization: Bearer TOKEN (or Basic)");
        };
        if let Some(token) = header.strip_prefix("Bearer ") {
            let token = token.trim().as_bytes();
            let mut found = None;
            for candidate in &self.tokens {
                if bool::from(candidate.secret.as_bytes().ct_eq(token)) {
                    found = Some(candidate.name.clone());
                }
            }
            return found.ok_or("the bearer token is not valid");
        }
        if let Some(encoded) = header.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or("the Basic credentials are not valid base64 of user:password")?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or("the Basic credentials are not user:password")?;
            let expected = self.passwords.get(user).map(String::as_bytes);
            let ok = match expected {
                Some(expected) => bool::from(expected.ct_eq(password.as_bytes())),
                None => false,
            };
            return if ok {
                Ok(user.to_string())
            } else {
                Err("wrong user name or password")
            };
        }
        Err("unsupported Authorization scheme: use Bearer or Basic")
    }
}

/// The SCRAM password source for pgwire.
#[derive(Debug, Clone)]
pub struct ScramSource(pub Arc<Accounts>);

#[async_trait]
impl AuthSource for ScramSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let (salt, hash) = login
            .user()
            .and_then(|user| self.0.users.get(user))
            .unwrap_or(&self.0.decoy);
        Ok(Password::new(Some(salt.clone()), hash.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::config::{Overrides, ServerConfig, Settings};

    #[test]
    fn http_credentials() {
        let settings = Settings::resolve(
            &ServerConfig::default(),
            Overrides {
                user: Some(("ana".into(), "s3cret".into())),
                token: Some("0123456789abcdef0123".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let accounts = Accounts::new(&settings);
        assert!(accounts.http(None).is_err());
        assert!(accounts.http(Some("Bearer 0123456789abcdef0123")).is_ok());
        assert!(accounts.http(Some("Bearer 0123456789abcdef0124")).is_err());
        let basic = base64::engine::general_purpose::STANDARD.encode("ana:s3cret");
        assert_eq!(
            accounts.http(Some(&format!("Basic {basic}"))).unwrap(),
            "ana"
        );
        let wrong = base64::engine::general_purpose::STANDARD.encode("ana:nope");
        assert!(accounts.http(Some(&format!("Basic {wrong}"))).is_err());
    }
}
