//! The server's HTML: askama templates (`templates/*.html`, compiled into the binary) for the
//! dashboard's pages and the OAuth result page. Every value is HTML-escaped by askama; the
//! pages carry no inline script or style (the dashboard's policy allows neither).

use askama::Template;

/// Who is signed in, as the pages show it.
pub struct Viewer<'a> {
    /// The user's email, or their id where they have none.
    pub who: &'a str,
    /// The session's CSRF token, which the page's script sends back as `X-CSRF-Token`.
    pub csrf: &'a str,
}

/// The sign-in page's Firebase settings: the Web API key and the Auth REST endpoint.
pub struct FirebaseWeb<'a> {
    pub key: &'a str,
    pub url: &'a str,
}

/// What every dashboard page's frame (`base.html`) shows.
pub struct Layout<'a> {
    /// `data-page` of the body: which part of the script runs, and which link is current.
    pub page: &'a str,
    pub title: &'a str,
    /// `None`: no navigation, no CSRF token (the sign-in page).
    pub viewer: Option<Viewer<'a>>,
    pub firebase: Option<FirebaseWeb<'a>>,
}

pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

const NAV: [(&str, &str, &str); 7] = [
    ("posts", "/posts", "Posts"),
    ("media", "/media", "Media"),
    ("accounts", "/accounts", "Accounts"),
    ("api-keys", "/settings/api-keys", "Settings › API Keys"),
    ("audit", "/settings/audit", "Audit log"),
    ("sessions", "/settings/sessions", "Sessions"),
    ("subscription", "/subscription", "Subscription"),
];

impl Layout<'_> {
    pub fn nav(&self) -> impl Iterator<Item = NavLink> + '_ {
        NAV.iter().map(|&(id, href, label)| NavLink {
            href,
            label,
            current: id == self.page,
        })
    }
}

/// The dashboard's pages, by their `data-page` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DashboardPage {
    Login,
    Posts,
    Media,
    ApiKeys,
    Audit,
    Accounts,
    Subscription,
    Sessions,
}

impl DashboardPage {
    /// The body's `data-page`.
    pub fn id(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Posts => "posts",
            Self::Media => "media",
            Self::ApiKeys => "api-keys",
            Self::Audit => "audit",
            Self::Accounts => "accounts",
            Self::Subscription => "subscription",
            Self::Sessions => "sessions",
        }
    }

    /// The page's title, before " · Soku".
    pub fn title(self) -> &'static str {
        match self {
            Self::Login => "Sign in",
            Self::Posts => "Posts",
            Self::Media => "Media",
            Self::ApiKeys => "API Keys",
            Self::Audit => "Audit log",
            Self::Accounts => "Accounts",
            Self::Subscription => "Subscription",
            Self::Sessions => "Sessions",
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct Login<'a> {
    layout: Layout<'a>,
}

#[derive(Template)]
#[template(path = "posts.html")]
struct Posts<'a> {
    layout: Layout<'a>,
}

#[derive(Template)]
#[template(path = "media.html")]
struct Media<'a> {
    layout: Layout<'a>,
}

#[derive(Template)]
#[template(path = "api-keys.html")]
struct ApiKeys<'a> {
    layout: Layout<'a>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct Audit<'a> {
    layout: Layout<'a>,
}

#[derive(Template)]
#[template(path = "accounts.html")]
struct Accounts<'a> {
    layout: Layout<'a>,
}

#[derive(Template)]
#[template(path = "subscription.html")]
struct Subscription<'a> {
    layout: Layout<'a>,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct Sessions<'a> {
    layout: Layout<'a>,
}

/// One dashboard page's HTML.
pub fn dashboard_page(page: DashboardPage, layout: Layout<'_>) -> askama::Result<String> {
    match page {
        DashboardPage::Login => Login { layout }.render(),
        DashboardPage::Posts => Posts { layout }.render(),
        DashboardPage::Media => Media { layout }.render(),
        DashboardPage::ApiKeys => ApiKeys { layout }.render(),
        DashboardPage::Audit => Audit { layout }.render(),
        DashboardPage::Accounts => Accounts { layout }.render(),
        DashboardPage::Subscription => Subscription { layout }.render(),
        DashboardPage::Sessions => Sessions { layout }.render(),
    }
}

#[derive(Template)]
#[template(path = "connected.html")]
struct Connected<'a> {
    platform: &'a str,
    who: &'a str,
}

/// The page a browser lands on when a platform's authorization ends with an account connected
/// and the flow has no redirect of its own: "`platform` account connected", naming `who`.
pub fn connected_page(platform: &str, who: &str) -> askama::Result<String> {
    Connected { platform, who }.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let html = connected_page("X", "<script>\"a\" & 'b'</script>").unwrap();
        assert!(
            html.contains("&#60;script&#62;&#34;a&#34; &#38; &#39;b&#39;&#60;/script&#62;"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn the_frame_marks_the_current_page_and_carries_the_csrf_token() {
        let layout = Layout {
            page: "accounts",
            title: "Accounts",
            viewer: Some(Viewer {
                who: "a@example.com",
                csrf: "tok\"en",
            }),
            firebase: None,
        };
        let html = dashboard_page(DashboardPage::Accounts, layout).unwrap();
        assert!(html.contains("<meta name=\"csrf-token\" content=\"tok&#34;en\">"));
        assert!(html.contains("<a href=\"/accounts\" aria-current=\"page\">Accounts</a>"));
        assert!(html.contains("<a href=\"/posts\">Posts</a>"));
        assert!(html.contains("<body data-page=\"accounts\">"));
        assert!(html.contains("id=\"connect-form\""));
        assert!(!html.contains("<style") && !html.contains("<script>"));
    }

    #[test]
    fn the_sign_in_page_has_no_navigation_and_may_name_firebase() {
        let layout = Layout {
            page: "login",
            title: "Sign in",
            viewer: None,
            firebase: Some(FirebaseWeb {
                key: "k",
                url: "https://auth.example/v1",
            }),
        };
        let html = dashboard_page(DashboardPage::Login, layout).unwrap();
        assert!(!html.contains("csrf-token") && !html.contains("<nav"));
        assert!(html.contains("data-firebase-key=\"k\""));
        assert!(html.contains("id=\"login-form\""));
    }
}
