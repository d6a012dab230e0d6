//! What a post is made of, checked against Instagram's rules.

use super::*;

/// One carousel item, or a story's medium.
#[derive(Debug, Clone, Copy)]
pub(super) enum Item<'a> {
    Image(&'a str),
    Video(&'a str),
}

/// What a post is made of.
#[derive(Debug)]
pub(super) enum Shape<'a> {
    Image {
        url: &'a str,
        caption: Option<&'a str>,
    },
    Carousel {
        items: Vec<Item<'a>>,
        caption: Option<&'a str>,
    },
    Reel {
        video: &'a str,
        caption: Option<&'a str>,
        share_to_feed: Option<bool>,
        cover: Option<&'a str>,
        trial: bool,
    },
    Story(Item<'a>),
}

impl Shape<'_> {
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Shape::Image { .. } => "image",
            Shape::Carousel { .. } => "carousel",
            Shape::Reel { .. } => "reel",
            Shape::Story(_) => "story",
        }
    }

    pub(super) fn caption(&self) -> Option<&str> {
        match self {
            Shape::Image { caption, .. }
            | Shape::Carousel { caption, .. }
            | Shape::Reel { caption, .. } => *caption,
            Shape::Story(_) => None,
        }
    }

    pub(super) fn has_video(&self) -> bool {
        match self {
            Shape::Image { .. } => false,
            Shape::Carousel { items, .. } => items.iter().any(|i| matches!(i, Item::Video(_))),
            Shape::Reel { .. } => true,
            Shape::Story(item) => matches!(item, Item::Video(_)),
        }
    }

    /// A digest of everything the post sends: progress saved for another post is not reused.
    pub(super) fn key(&self) -> String {
        let described = match self {
            Shape::Image { url, caption } => json!(["image", url, caption]),
            Shape::Carousel { items, caption } => {
                let items: Vec<Value> = items.iter().map(item_json).collect();
                json!(["carousel", items, caption])
            }
            Shape::Reel {
                video,
                caption,
                share_to_feed,
                cover,
                trial,
            } => json!(["reel", video, caption, share_to_feed, cover, trial]),
            Shape::Story(item) => json!(["story", item_json(item)]),
        };
        let digest = sha2::Sha256::digest(described.to_string().as_bytes());
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    /// Where the published media is listed and how it reads back there: the edge, its
    /// `media_type` and `media_product_type` ("a published reel reads back `media_type`
    /// `VIDEO`", stories "request its `media_product_type` field instead").
    pub(super) fn read_back(&self) -> (&'static str, &'static str, &'static str) {
        match self {
            Shape::Image { .. } => ("media", "IMAGE", "FEED"),
            Shape::Carousel { .. } => ("media", "CAROUSEL_ALBUM", "FEED"),
            Shape::Reel { .. } => ("media", "VIDEO", "REELS"),
            Shape::Story(Item::Image(_)) => ("stories", "IMAGE", "STORY"),
            Shape::Story(Item::Video(_)) => ("stories", "VIDEO", "STORY"),
        }
    }
}

pub(super) fn item_json(item: &Item<'_>) -> Value {
    match item {
        Item::Image(u) => json!(["image", u]),
        Item::Video(u) => json!(["video", u]),
    }
}

pub(super) fn permanent(code: &str, message: impl Into<String>) -> PublishError {
    PublishError::new(FailureClass::Permanent, code, message)
}

pub(super) fn quota_exceeded(message: impl Into<String>) -> PublishError {
    PublishError::new(
        FailureClass::Retryable {
            retry_after: Some(QUOTA_RETRY_AFTER),
        },
        "quota_exceeded",
        message,
    )
}

/// The options of a post that sets none for Instagram.
pub(super) static NO_OPTIONS: InstagramOptions = InstagramOptions {
    post_type: None,
    share_to_feed: None,
    cover_url: None,
    trial_reel: None,
};

/// What the request posts, checked against Instagram's rules (those submission checks too).
pub(super) fn shape_of(request: &PublishRequest) -> Result<Shape<'_>, PublishError> {
    let content = &request.content;
    let options = match &request.options {
        PlatformOptions::Instagram(o) => o,
        _ => &NO_OPTIONS,
    };
    let caption = content.text.as_deref().filter(|t| !t.trim().is_empty());
    if let Some(c) = caption {
        let length = soku_core::posts::caption_length(c, false);
        if length > MAX_CAPTION_CHARS {
            return Err(permanent(
                "text_too_long",
                format!(
                    "The caption is {length} characters; Instagram allows {MAX_CAPTION_CHARS}."
                ),
            ));
        }
        for (sigil, max, code, what) in [
            ('#', INSTAGRAM_MAX_HASHTAGS, "too_many_hashtags", "hashtags"),
            (
                '@',
                INSTAGRAM_MAX_MENTIONS,
                "too_many_mentions",
                "@mentions",
            ),
        ] {
            let n = soku_core::posts::count_tags(c, sigil);
            if n > max {
                return Err(permanent(
                    code,
                    format!("The caption has {n} {what}; Instagram allows at most {max}."),
                ));
            }
        }
    }
    let mut items: Vec<Item<'_>> = content
        .image_urls
        .iter()
        .map(String::as_str)
        .filter(|u| !u.trim().is_empty())
        .map(Item::Image)
        .collect();
    let video = content
        .video_url
        .as_deref()
        .filter(|u| !u.trim().is_empty());
    if let Some(v) = video {
        items.push(Item::Video(v));
    }
    if items.is_empty() {
        return Err(permanent(
            "empty_post",
            "An Instagram post needs an image or a video.",
        ));
    }
    if items.len() > MAX_CAROUSEL_ITEMS {
        return Err(permanent(
            "too_many_images",
            format!(
                "Instagram posts take at most {MAX_CAROUSEL_ITEMS} images and videos; this post has {}.",
                items.len()
            ),
        ));
    }
    let post_type = soku_core::posts::instagram_post_type(content, options);
    // `instagram_post_type` reads a video post as a reel; a post of images with a video is a
    // carousel.
    let post_type = match (options.post_type, content.media_type) {
        (None, MediaType::Video) if items.len() > 1 => InstagramPostType::Feed,
        _ => post_type,
    };
    if post_type != InstagramPostType::Reel {
        let set = [
            ("coverUrl", options.cover_url.is_some()),
            ("shareToFeed", options.share_to_feed.is_some()),
            ("trialReel", options.trial_reel == Some(true)),
        ];
        if let Some((name, _)) = set.iter().find(|(_, set)| *set) {
            return Err(permanent(
                "reel_only_option",
                format!("'{name}' applies to Instagram reels only."),
            ));
        }
    }
    match post_type {
        InstagramPostType::Story => match items.as_slice() {
            [one] => Ok(Shape::Story(*one)),
            _ => Err(permanent(
                "story_single_media",
                format!(
                    "An Instagram story holds one image or video; this post has {}.",
                    items.len()
                ),
            )),
        },
        InstagramPostType::Reel => match (video, items.len()) {
            (Some(v), 1) => Ok(Shape::Reel {
                video: v,
                caption,
                share_to_feed: options.share_to_feed,
                cover: options
                    .cover_url
                    .as_deref()
                    .filter(|c| !c.trim().is_empty()),
                trial: options.trial_reel == Some(true),
            }),
            (Some(_), _) => Err(permanent(
                "reel_needs_video",
                "An Instagram reel is one video; this post also has images.",
            )),
            (None, _) => Err(permanent(
                "reel_needs_video",
                "An Instagram reel needs a video.",
            )),
        },
        InstagramPostType::Feed => match items.as_slice() {
            [Item::Image(url)] => Ok(Shape::Image { url, caption }),
            // A feed video alone is a reel shared to the feed (module docs).
            [Item::Video(v)] => Ok(Shape::Reel {
                video: v,
                caption,
                share_to_feed: Some(true),
                cover: None,
                trial: false,
            }),
            _ => Ok(Shape::Carousel { items, caption }),
        },
    }
}
