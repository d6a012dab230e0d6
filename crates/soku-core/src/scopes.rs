//! What a restricted API key may do (spec 4.1): a set of scopes, checked once per request in
//! the server's authentication layer against the route's required scope.

use std::fmt;

/// One scope of spec 4.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    PostsRead,
    PostsWrite,
    MediaRead,
    MediaWrite,
    AccountsRead,
    AccountsWrite,
    TemplatesWrite,
    AiTranscribe,
    RepurposeRead,
    RepurposeWrite,
}

impl Scope {
    /// Every scope, in the order of spec 4.1.
    pub const ALL: [Scope; 10] = [
        Scope::PostsRead,
        Scope::PostsWrite,
        Scope::MediaRead,
        Scope::MediaWrite,
        Scope::AccountsRead,
        Scope::AccountsWrite,
        Scope::TemplatesWrite,
        Scope::AiTranscribe,
        Scope::RepurposeRead,
        Scope::RepurposeWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::PostsRead => "posts:read",
            Scope::PostsWrite => "posts:write",
            Scope::MediaRead => "media:read",
            Scope::MediaWrite => "media:write",
            Scope::AccountsRead => "accounts:read",
            Scope::AccountsWrite => "accounts:write",
            Scope::TemplatesWrite => "templates:write",
            Scope::AiTranscribe => "ai:transcribe",
            Scope::RepurposeRead => "repurpose:read",
            Scope::RepurposeWrite => "repurpose:write",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-empty set of scopes, as one word: a check is one `and`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScopeSet(u16);

impl ScopeSet {
    /// The set of these scopes; `None` when there are none.
    pub fn of(scopes: impl IntoIterator<Item = Scope>) -> Option<ScopeSet> {
        let bits = scopes.into_iter().fold(0u16, |bits, s| bits | s.bit());
        (bits != 0).then_some(ScopeSet(bits))
    }

    /// Parses scope names: the first unknown name is the error; an empty list is `Ok(None)`.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Option<ScopeSet>, String> {
        let mut scopes = Vec::new();
        for name in names {
            scopes.push(Scope::parse(name).ok_or_else(|| name.to_owned())?);
        }
        Ok(ScopeSet::of(scopes))
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The scopes in the order of spec 4.1.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// The names, in the order of spec 4.1.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Scope::as_str).collect()
    }

    /// Stored form: the names separated by spaces (as OAuth writes scopes).
    pub fn to_text(self) -> String {
        self.names().join(" ")
    }

    /// Reads the stored form; unknown names are an error (the database was written by us).
    pub fn from_text(text: &str) -> Option<ScopeSet> {
        ScopeSet::parse(text.split_ascii_whitespace())
            .ok()
            .flatten()
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sets_check_membership() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(Scope::parse("posts:delete"), None);
        let set = ScopeSet::parse(["media:read", "posts:read", "media:read"])
            .unwrap()
            .unwrap();
        assert!(set.contains(Scope::PostsRead));
        assert!(set.contains(Scope::MediaRead));
        assert!(!set.contains(Scope::PostsWrite));
        assert_eq!(set.names(), ["posts:read", "media:read"]);
        assert_eq!(ScopeSet::from_text(&set.to_text()), Some(set));
        assert_eq!(
            ScopeSet::parse(["posts:read", "nope"]),
            Err("nope".to_owned())
        );
        assert_eq!(ScopeSet::parse([]), Ok(None));
        assert_eq!(ScopeSet::from_text("posts:read bogus"), None);
    }
}
