//! Tokens and who may do what: authentication, permissions, Page roles and tasks.

use super::*;

/// The token of a Graph call, checked. Codes and subcodes from Graph API "Handling Errors":
/// "190 | Access token has expired", subcodes "458 | App Not Installed", "460 | Password
/// Changed", "463 | Expired", "467 | Invalid Access Token", "492 | Invalid Session" ("User
/// associated with the Page access token does not have an appropriate role on the Page").
#[allow(clippy::result_large_err)]
pub(super) fn authenticate(s: &Inner, token: Option<&str>) -> Result<IssuedToken, Response> {
    let Some(t) = token else {
        // Not in the table; the live API's answer to a call with no token (the fake's choice).
        return Err(err(
            104,
            None,
            "OAuthException",
            "An access token is required to request this resource.",
        ));
    };
    let Some(tok) = s.tokens.iter().find(|x| x.token == t) else {
        return Err(err(
            190,
            None,
            "OAuthException",
            "Invalid OAuth access token - Cannot parse access token",
        ));
    };
    if let Some(sub) = tok.revoked {
        let message = match sub {
            458 => "Error validating access token: The user has not authorized application.",
            459 => {
                "Error validating access token: You cannot access the app till you log in to www.facebook.com and follow the instructions given."
            }
            460 => {
                "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons."
            }
            464 => {
                "Error validating access token: Sessions for the user are not allowed because the user is not a confirmed user."
            }
            _ => "Error validating access token: The session is invalid.",
        };
        return Err(err(190, Some(sub), "OAuthException", message));
    }
    if let Some(exp) = tok.expires_at
        && exp <= SystemTime::now()
    {
        return Err(err(
            190,
            Some(463),
            "OAuthException",
            &format!(
                "Error validating access token: Session has expired on {}. The current time is {}.",
                iso(unix(exp)),
                iso(unix(SystemTime::now()))
            ),
        ));
    }
    if let TokenKind::Page(page) = &tok.kind
        && !s.page(page).is_some_and(|p| p.role)
    {
        return Err(err(
            190,
            Some(492),
            "OAuthException",
            "Error validating access token: User associated with the Page access token does not have an appropriate role on the Page.",
        ));
    }
    Ok(tok.clone())
}

/// Missing permissions: "10 | API Permission Denied" for reads and Instagram calls; "200-299 |
/// API Permission" for Page publishing ("Handling Errors").
#[allow(clippy::result_large_err)]
pub(super) fn need(s: &Inner, permissions: &[&str], code: i64) -> Result<(), Response> {
    for p in permissions {
        if !s.has(p) {
            let message = if code == 200 {
                format!(
                    "(#200) If posting to a page, requires both pages_read_engagement and pages_manage_posts as an admin with sufficient administrative permission (missing {p})"
                )
            } else {
                format!("(#10) Application does not have permission for this action ({p})")
            };
            return Err(err(code, None, "OAuthException", &message));
        }
    }
    Ok(())
}

/// The token can read this Page: the Page's own token, or a user token of someone with a role.
pub(super) fn can_see_page(s: &Inner, tok: &IssuedToken, page_id: &str) -> bool {
    let Some(page) = s.page(page_id) else {
        return false;
    };
    match &tok.kind {
        TokenKind::Page(p) => p == page_id,
        _ => page.role,
    }
}

/// An Instagram account is reached through the Page it is linked to.
pub(super) fn can_see_ig(s: &Inner, tok: &IssuedToken, ig_user_id: &str) -> bool {
    s.ig(ig_user_id)
        .is_some_and(|a| can_see_page(s, tok, &a.page_id))
}

pub(super) fn can_create(page: &Page) -> bool {
    page.tasks
        .iter()
        .any(|t| t == "CREATE_CONTENT" || t == "MANAGE")
}

/// Page publishing takes the Page's own token with `pages_manage_posts` and
/// `pages_read_engagement` (Pages API "Posts", whose task list is "`CREATE_CONTENT`, `MANAGE`,
/// and `MODERATE`"; the fake asks for CREATE_CONTENT or MANAGE). A user token or another
/// Page's token gets code 200, in "200-299 | API Permission" (the fake's choice of message).
#[allow(clippy::result_large_err)]
pub(super) fn page_publisher(
    s: &Inner,
    tok: &IssuedToken,
    page_id: &str,
    extra: &[&str],
) -> Result<(), Response> {
    let mut perms = vec!["pages_manage_posts", "pages_read_engagement"];
    perms.extend_from_slice(extra);
    need(s, &perms, 200)?;
    let page = s.page(page_id).unwrap();
    if tok.kind != TokenKind::Page(page_id.to_owned()) || !page.role || !can_create(page) {
        return Err(err(
            200,
            None,
            "OAuthException",
            "(#200) If posting to a page, requires both pages_read_engagement and pages_manage_posts as an admin with sufficient administrative permission",
        ));
    }
    Ok(())
}
