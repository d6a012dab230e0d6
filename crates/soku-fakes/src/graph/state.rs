//! The fake's state: tokens, Pages, Instagram accounts, containers, media, posts, photos and videos.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    UserShort,
    UserLong,
    /// A Page access token for this Page.
    Page(String),
}

/// A token the fake issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub kind: TokenKind,
    pub issued_at: SystemTime,
    /// `None`: does not expire (a Page token from a long-lived user token: "Long-lived Page
    /// access token do not have an expiration date").
    pub expires_at: Option<SystemTime>,
    /// Revoked, with the `error_subcode` the API answers (see [`Revocation`]).
    pub revoked: Option<i64>,
}

/// Why a token stopped working. The subcodes of code 190, Graph API "Handling Errors":
/// "458 | App Not Installed", "459 | User Checkpointed", "460 | Password Changed",
/// "464 | Unconfirmed User", "467 | Invalid Access Token".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    AppRemoved = 458,
    Checkpointed = 459,
    PasswordChanged = 460,
    Unconfirmed = 464,
    Invalid = 467,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub id: String,
    pub name: String,
    pub category: String,
    pub ig_user_id: Option<String>,
    /// The user's tasks on the Page.
    pub tasks: Vec<String>,
    /// The user still has a role on the Page.
    pub role: bool,
}

#[derive(Debug, Clone)]
pub struct IgAccount {
    pub id: String,
    pub username: String,
    pub name: String,
    pub page_id: String,
}

/// What a container is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    Image,
    /// A carousel item with `media_type=VIDEO`.
    CarouselVideo,
    Reel,
    StoryImage,
    StoryVideo,
    Carousel,
}

/// An Instagram media container.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub ig_user_id: String,
    pub kind: ContainerKind,
    pub image_url: Option<String>,
    pub video_url: Option<String>,
    pub caption: Option<String>,
    pub is_carousel_item: bool,
    pub children: Vec<String>,
    pub share_to_feed: Option<bool>,
    pub cover_url: Option<String>,
    pub thumb_offset: Option<u64>,
    /// `trial_params.graduation_strategy`.
    pub trial_graduation: Option<String>,
    pub collaborators: Vec<String>,
    pub alt_text: Option<String>,
    /// Status reads left before it leaves IN_PROGRESS (when processing is counted in reads).
    pub polls_left: u32,
    /// When processing ends (when processing is counted in time).
    pub ready_at: Option<Instant>,
    /// What it becomes: `None` = FINISHED, `Some(subcode)` = ERROR with that subcode.
    pub error_subcode: Option<i64>,
    pub created_at: SystemTime,
    pub expired: bool,
    /// The media it became.
    pub media_id: Option<String>,
}

/// A published Instagram media object.
#[derive(Debug, Clone)]
pub struct IgMedia {
    pub id: String,
    pub ig_user_id: String,
    pub container_id: Option<String>,
    /// As read back: IMAGE, VIDEO, CAROUSEL_ALBUM ("a published reel reads back `media_type`
    /// `VIDEO`").
    pub media_type: String,
    /// FEED, REELS, STORY.
    pub media_product_type: String,
    pub caption: Option<String>,
    pub media_url: Option<String>,
    pub children: Vec<String>,
    pub shortcode: String,
    pub permalink: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// Published through the content publishing API (counts toward the quota).
    pub via_api: bool,
}

/// A Page post.
#[derive(Debug, Clone)]
pub struct PagePost {
    /// `<page-id>_<post-id>`.
    pub id: String,
    pub page_id: String,
    pub message: Option<String>,
    pub link: Option<String>,
    /// Unix seconds.
    pub created_time: i64,
    /// `published=false` (and not scheduled): an unpublished post.
    pub published: bool,
    pub scheduled_publish_time: Option<i64>,
    /// The photos it carries (attached, or the photo it was made for).
    pub photo_ids: Vec<String>,
    /// The video it was made for; listed once the video is ready.
    pub video_id: Option<String>,
}

/// A photo uploaded to a Page.
#[derive(Debug, Clone)]
pub struct Photo {
    pub id: String,
    pub page_id: String,
    pub url: String,
    pub caption: Option<String>,
    pub published: bool,
    pub temporary: bool,
    pub post_id: Option<String>,
    /// The feed post it was attached to (`attached_media`).
    pub attached_to: Option<String>,
    pub created_time: i64,
}

/// What a Page video was made as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoKind {
    /// `POST /{page-id}/videos`.
    Video,
    /// `POST /{page-id}/video_reels`.
    Reel,
    /// `POST /{page-id}/video_stories`.
    Story,
}

/// A video uploaded to a Page: a plain video, or a reel or video story session.
#[derive(Debug, Clone)]
pub struct Video {
    pub id: String,
    pub page_id: String,
    pub kind: VideoKind,
    /// The hosted file (empty for a reel or story session not uploaded yet).
    pub file_url: String,
    /// The file has arrived (always for plain videos; for reels and stories, once the upload
    /// host took the `file_url`).
    pub uploaded: bool,
    /// Reels and stories: the `video_state` `upload_phase=finish` was accepted with
    /// (`PUBLISHED` for stories).
    pub finished: Option<String>,
    /// Reels and stories: when it was published (Unix seconds), for the reels quota.
    pub published_at: Option<i64>,
    pub description: Option<String>,
    pub title: Option<String>,
    pub published: bool,
    pub polls_left: u32,
    /// Processing fails with this (code, message).
    pub failure: Option<(i64, String)>,
    pub post_id: Option<String>,
    pub created_time: i64,
}

/// A story published on a Page (`/video_stories` or `/photo_stories`).
#[derive(Debug, Clone)]
pub struct PageStory {
    /// The story post's id (what the finish call answers as `post_id`).
    pub post_id: String,
    pub page_id: String,
    /// `video` or `photo`, as `GET /{page-id}/stories` answers `media_type`.
    pub media_type: String,
    /// The video or photo id.
    pub media_id: String,
    /// Unix seconds.
    pub created_time: i64,
}

/// A throttle the API applies (Graph API "Rate Limiting").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// "4 | API Too Many Calls" (application-level); `X-App-Usage` at 100.
    App,
    /// "17 | API User Too Many Calls".
    User,
    /// "`error code 32` Page calls made with a User access token".
    PageUserToken,
    /// "`error code 80001` Page calls made with a Page or System User access token".
    PageBuc,
    /// "`error code 80002` Instagram".
    InstagramBuc,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Injected {
    Throttle(Throttle),
    Transient,
}

pub(super) struct Code {
    pub(super) redirect_uri: String,
    pub(super) permissions: Vec<String>,
    pub(super) issued: SystemTime,
    pub(super) used: bool,
}

/// `X-App-Usage` percentages.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppUsage {
    pub call_count: u32,
    pub total_time: u32,
    pub total_cputime: u32,
}

pub(super) struct Inner {
    pub(super) version: String,
    pub(super) redirect_uris: Vec<String>,
    pub(super) codes: HashMap<String, Code>,
    pub(super) deny_next_login: bool,
    pub(super) tokens: Vec<IssuedToken>,
    /// The permissions the user granted the app (Graph keeps them per user and app, so every
    /// token of the user has them).
    pub(super) granted: Vec<String>,
    pub(super) pages: Vec<Page>,
    pub(super) ig_accounts: Vec<IgAccount>,
    /// (user token, page id) → the Page token handed out for it.
    pub(super) page_tokens: HashMap<(String, String), String>,
    pub(super) containers: HashMap<String, Container>,
    /// Newest last.
    pub(super) media: Vec<IgMedia>,
    /// Newest last.
    pub(super) posts: Vec<PagePost>,
    pub(super) photos: HashMap<String, Photo>,
    pub(super) videos: HashMap<String, Video>,
    /// Newest last.
    pub(super) stories: Vec<PageStory>,
    /// The fake's own base URL (for `upload_url`).
    pub(super) url: String,
    pub(super) reels_quota: u32,
    /// (Page id, Unix seconds) of reels published through the API some other way.
    pub(super) earlier_api_reels: Vec<(String, i64)>,
    pub(super) next_id: u64,
    pub(super) container_polls: u32,
    pub(super) container_time: Option<Duration>,
    pub(super) fail_next_container: VecDeque<i64>,
    pub(super) failing_urls: HashMap<String, i64>,
    pub(super) fetch_media: bool,
    pub(super) fetched: Vec<(String, Result<u16, String>)>,
    pub(super) video_polls: u32,
    pub(super) fail_next_video: VecDeque<(i64, String)>,
    /// The next `POST /{page}/videos` is taken, then answered with a transient 500.
    pub(super) lose_next_video_answer: bool,
    /// Plain videos are listed on `/{page}/videos` only once processed.
    pub(super) video_listing_lag: bool,
    pub(super) quota_total: u32,
    pub(super) injected: VecDeque<Injected>,
    pub(super) app_usage: AppUsage,
    pub(super) containers_created: usize,
    pub(super) publishes: usize,
    pub(super) page_posts_created: usize,
    pub(super) photos_uploaded: usize,
    pub(super) videos_uploaded: usize,
    pub(super) status_reads: usize,
    pub(super) video_status_reads: usize,
    pub(super) reels_started: usize,
    pub(super) reels_uploaded: usize,
    pub(super) reels_published: usize,
    pub(super) stories_published: usize,
    pub(super) exchange_calls: usize,
    pub(super) graph_calls: usize,
}

impl Inner {
    pub(super) fn id(&mut self, base: u64) -> String {
        self.next_id += 1;
        (base + self.next_id).to_string()
    }

    pub(super) fn page(&self, id: &str) -> Option<&Page> {
        self.pages.iter().find(|p| p.id == id)
    }

    pub(super) fn ig(&self, id: &str) -> Option<&IgAccount> {
        self.ig_accounts.iter().find(|a| a.id == id)
    }

    pub(super) fn has(&self, permission: &str) -> bool {
        self.granted.iter().any(|g| g == permission)
    }

    pub(super) fn issue(&mut self, kind: TokenKind, lifetime: Option<Duration>) -> String {
        let prefix = match kind {
            TokenKind::UserShort => "EAAs",
            TokenKind::UserLong => "EAAl",
            TokenKind::Page(_) => "EAAp",
        };
        let t = token(prefix);
        let now = SystemTime::now();
        self.tokens.push(IssuedToken {
            token: t.clone(),
            kind,
            issued_at: now,
            expires_at: lifetime.map(|d| now + d),
            revoked: None,
        });
        t
    }

    /// The Page token a user token gets for a Page (the same one on every call).
    pub(super) fn page_token_for(&mut self, user_token: &IssuedToken, page_id: &str) -> String {
        let key = (user_token.token.clone(), page_id.to_owned());
        if let Some(t) = self.page_tokens.get(&key) {
            return t.clone();
        }
        // "Long-lived Page access token do not have an expiration date"; from a short-lived
        // user token they "are valid for 1 hour".
        let lifetime = match user_token.kind {
            TokenKind::UserLong => None,
            _ => Some(SHORT_LIVED),
        };
        let t = self.issue(TokenKind::Page(page_id.to_owned()), lifetime);
        self.page_tokens.insert(key, t.clone());
        t
    }

    /// The container's status, without counting a read.
    pub(super) fn container_status(&self, c: &Container) -> (&'static str, Option<i64>) {
        if c.media_id.is_some() {
            return ("PUBLISHED", None);
        }
        if c.expired || c.created_at + CONTAINER_TTL <= SystemTime::now() {
            return ("EXPIRED", None);
        }
        let processing = match c.ready_at {
            Some(at) => Instant::now() < at,
            None => c.polls_left > 0,
        };
        if processing {
            return ("IN_PROGRESS", None);
        }
        if let Some(sub) = c.error_subcode {
            return ("ERROR", Some(sub));
        }
        // A carousel is as good as its children.
        for child in &c.children {
            if let Some(k) = self.containers.get(child)
                && let Some(sub) = k.error_subcode
            {
                return ("ERROR", Some(sub));
            }
        }
        ("FINISHED", None)
    }

    pub(super) fn video_ready(&self, video_id: &str) -> bool {
        self.videos
            .get(video_id)
            .is_some_and(|v| v.uploaded && v.polls_left == 0 && v.failure.is_none())
    }

    /// Posts a Page shows: published, and for a video post, once the video is ready.
    pub(super) fn visible_posts(&self, page_id: &str) -> Vec<&PagePost> {
        self.posts
            .iter()
            .rev()
            .filter(|p| p.page_id == page_id && p.published)
            .filter(|p| p.video_id.as_deref().is_none_or(|v| self.video_ready(v)))
            .collect()
    }

    /// Reels published through the API on the Page after `since` (the reels quota's usage).
    pub(super) fn api_reels_since(&self, page_id: &str, since: i64) -> usize {
        let ours = self
            .videos
            .values()
            .filter(|v| v.page_id == page_id && v.kind == VideoKind::Reel)
            .filter(|v| v.published_at.is_some_and(|t| t > since))
            .count();
        let earlier = self
            .earlier_api_reels
            .iter()
            .filter(|(p, t)| p == page_id && *t > since)
            .count();
        ours + earlier
    }

    pub(super) fn api_publishes_since(&self, ig_user_id: &str, since: i64) -> usize {
        self.media
            .iter()
            .filter(|m| m.ig_user_id == ig_user_id && m.via_api && m.timestamp > since)
            .count()
    }
}

pub(super) type Shared = Arc<Mutex<Inner>>;
