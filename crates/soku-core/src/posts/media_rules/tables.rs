//! The tables: each platform's media rules, cited from its own documentation.

use super::{AspectRatio, KindRules, MediaRules, Types};
use crate::platform::Platform;

pub(super) const KB: u64 = 1_000;
pub(super) const MB: u64 = 1 << 20;
pub(super) const GB: u64 = 1 << 30;
pub(super) const SEC: u64 = 1_000;
pub(super) const MIN: u64 = 60 * SEC;

pub(super) const JPEG: &str = "image/jpeg";
pub(super) const PNG: &str = "image/png";
pub(super) const GIF: &str = "image/gif";
pub(super) const WEBP: &str = "image/webp";
pub(super) const MP4: &str = "video/mp4";
pub(super) const MOV: &str = "video/quicktime";
pub(super) const WEBM: &str = "video/webm";

/// X, through the X API v2 media upload (`POST /2/media/upload/initialize`, `append`, `finalize`)
/// and `POST /2/tweets`.
///
/// Sources:
/// - <https://docs.x.com/x-api/media/quickstart/best-practices> ("Keep in mind": "You may attach
///   up to 4 photos, 1 animated GIF or 1 video in a Post"; image types JPG, PNG, GIF, WEBP;
///   images <= 5 MB, animated GIFs <= 15 MB; video "Advanced": file size "must not exceed 512
///   mb", duration "between 0.5 seconds and 140 seconds", aspect ratio "between 1:3 and 3:1",
///   dimensions "between 32x32 and 1280x1024").
/// - <https://docs.x.com/x-api/media/introduction> (Image 5 MB, GIF 15 MB, Video 512 MB).
/// - <https://docs.x.com/x-api/media/initialize-media-upload> (the OpenAPI `media_type` enum:
///   `video/mp4`, `video/webm`, `video/mp2t`, `video/quicktime`; Matroska is not among them).
///
/// Noted, not used: a newer revision of the best-practices page in X's docs repository gives Post
/// video 0.5 s to 20 minutes and 8 GB (125 minutes / 16 GB for Premium). The published page and
/// the introduction both still say 512 MB and 140 s, so those are used. The video maximum of
/// 1280x1024 is not checked: the same page says subscribers "can upload a 1080p video", which that
/// maximum would forbid, so it cannot be a hard limit. The GIF resolution and frame figures are
/// "recommendations", and "1 animated GIF" alone needs to know whether a GIF is animated, which
/// the facts do not say: neither is checked.
pub static X: MediaRules = MediaRules {
    platform: Platform::X,
    sources: &[
        "https://docs.x.com/x-api/media/quickstart/best-practices",
        "https://docs.x.com/x-api/media/introduction",
        "https://docs.x.com/x-api/media/initialize-media-upload",
    ],
    image: KindRules {
        types: Types::Only(&[JPEG, PNG, GIF, WEBP]),
        max_bytes: Some(5 * MB),
        max_bytes_by_type: &[(GIF, 15 * MB)],
        ..KindRules::ANY
    },
    video: KindRules {
        types: Types::Only(&[MP4, MOV, WEBM]),
        max_bytes: Some(512 * MB),
        min_duration_ms: Some(500),
        max_duration_ms: Some(140 * SEC),
        min_aspect: Some(AspectRatio::new(1, 3)),
        max_aspect: Some(AspectRatio::new(3, 1)),
        min_width: Some(32),
        min_height: Some(32),
        ..KindRules::ANY
    },
    mixed: false,
    max_videos: Some(1),
};

/// Threads, through the Threads API (`POST /{threads-user-id}/threads`, `threads_publish`).
///
/// Source: <https://developers.facebook.com/documentation/threads/posts> (formerly
/// `developers.facebook.com/docs/threads/posts`), "Media Specifications": images JPEG
/// and PNG, 8 MB, "Aspect Ratio Limit: 10:1"; video MOV or MP4, "Maximum Columns (horizontal
/// pixels): 1920", "Required aspect ratio is between 0.01:1 and 10:1", "300 seconds (5 minutes)
/// maximum, minimum longer than 0 seconds", 1 GB. "Carousel Posts": "up to 20 images, videos,
/// or a mix of the two".
///
/// Not checked: image width 320 to 1440, because Threads scales images outside it ("will be
/// scaled up/down"); an image's narrowest ratio, because only "10:1" is given.
pub static THREADS: MediaRules = MediaRules {
    platform: Platform::Threads,
    sources: &["https://developers.facebook.com/documentation/threads/posts"],
    image: KindRules {
        types: Types::Only(&[JPEG, PNG]),
        max_bytes: Some(8 * MB),
        max_aspect: Some(AspectRatio::new(10, 1)),
        ..KindRules::ANY
    },
    video: KindRules {
        types: Types::Only(&[MP4, MOV]),
        max_bytes: Some(GB),
        min_duration_ms: Some(1),
        max_duration_ms: Some(300 * SEC),
        min_aspect: Some(AspectRatio::new(1, 100)),
        max_aspect: Some(AspectRatio::new(10, 1)),
        max_width: Some(1920),
        ..KindRules::ANY
    },
    mixed: true,
    max_videos: None,
};

/// Instagram, through the Instagram Platform's content publishing (`POST /<IG_ID>/media`,
/// `media_publish`). Soku publishes images as feed posts (a carousel when several) and a video
/// as a reel (spec 8.2), so the image specifications and the reel specifications apply.
///
/// Source: <https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media>
/// ("Image Specifications": "Format: JPEG", "File size: 8 MB maximum", "Aspect ratio: Must be
/// within a 4:5 to 1.91:1 range"; "Reel Specifications": MOV or MP4, "Maximum columns
/// (horizontal pixels): 1920", "Required aspect ratio is between 0.01:1 and 10:1", "Duration:
/// 15 mins maximum, 3 seconds minimum", "File size: 300MB maximum"; `children`: "Carousels can
/// have up to 10 total images, videos, or a mix of the two").
///
/// Noted, not used: older revisions of that page gave reels 1 GB (and, before reels, feed videos
/// 60 s and 100 MB); the current reference says 300 MB. Stories (`postType: story`) have their
/// own specifications: [`INSTAGRAM_STORY`]. Image
/// width 320 to 1440 is not checked: Instagram scales images outside it.
pub static INSTAGRAM: MediaRules = MediaRules {
    platform: Platform::Instagram,
    sources: &[
        "https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media",
    ],
    image: KindRules {
        types: Types::Only(&[JPEG]),
        max_bytes: Some(8 * MB),
        min_aspect: Some(AspectRatio::new(4, 5)),
        max_aspect: Some(AspectRatio::new(191, 100)),
        ..KindRules::ANY
    },
    video: KindRules {
        types: Types::Only(&[MP4, MOV]),
        max_bytes: Some(300 * MB),
        min_duration_ms: Some(3 * SEC),
        max_duration_ms: Some(15 * MIN),
        min_aspect: Some(AspectRatio::new(1, 100)),
        max_aspect: Some(AspectRatio::new(10, 1)),
        max_width: Some(1920),
        ..KindRules::ANY
    },
    mixed: true,
    max_videos: None,
};

/// Instagram stories (`postType: story`, `media_type=STORIES`), same source as [`INSTAGRAM`]:
/// "Story Image Specifications" (JPEG, 8 MB, as feed images; no aspect ratio given) and "Story
/// Video Specifications" ("Aspect ratio: 0.1:1 to 10:1", "Duration: 60 seconds maximum, 3
/// seconds minimum", "File size: 100MB maximum"; MOV or MP4 as reels).
pub static INSTAGRAM_STORY: MediaRules = MediaRules {
    platform: Platform::Instagram,
    sources: &[
        "https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media",
    ],
    image: KindRules {
        types: Types::Only(&[JPEG]),
        max_bytes: Some(8 * MB),
        ..KindRules::ANY
    },
    video: KindRules {
        types: Types::Only(&[MP4, MOV]),
        max_bytes: Some(100 * MB),
        min_duration_ms: Some(3 * SEC),
        max_duration_ms: Some(60 * SEC),
        min_aspect: Some(AspectRatio::new(1, 10)),
        max_aspect: Some(AspectRatio::new(10, 1)),
        ..KindRules::ANY
    },
    mixed: false,
    max_videos: Some(1),
};

/// Facebook Pages, through the Pages API (`POST /{page-id}/photos`, `/{page-id}/feed` with
/// `attached_media`) and the Video API (`POST /{page-id}/videos`). Soku's default is a feed post
/// (spec 8.2).
///
/// Sources:
/// - <https://developers.facebook.com/docs/graph-api/reference/page/photos/> and
///   <https://developers.facebook.com/docs/page-stories-api> (same table): photos ".jpeg, .bmp,
///   .png, .gif, .tiff", "Files can not exceed 10MB" (WebP is not listed).
/// - <https://developers.facebook.com/docs/video-api/guides/publishing>: documents no type, size
///   or duration limit for Page videos.
/// - <https://www.facebook.com/help/218673814818907> (Facebook's Help Center on the video files it
///   takes): "Videos must be less than 240 minutes long", "File sizes up to 10 GB". A feed video
///   over 240 minutes is refused (exactly 240 minutes passes: durations read from a container
///   are not exact to the millisecond); 10 GB is above what the server hosts (500 MB). That page
///   could not be read where this was written: its words are as services that publish to
///   Facebook reproduce them (Comergence's "Supported File Types for Social Media", Doodly's
///   posting guide), and third-party summaries agree on "4 hours".
///
/// Noted, not used: the older guide <https://developers.facebook.com/docs/graph-api/photo-uploads/>
/// only "recommend[s] uploading photos under 4MB" and PNGs under 1 MB "or the image may appear
/// pixelated": recommendations, superseded by the 10 MB reference. The same Help Center text gives
/// feed videos a "Supported aspect ratio: between 9x16 and 16x9"; whether a Page video outside it
/// is refused or letterboxed is not said, so it is not checked. Reels and stories have their own
/// rules: [`FACEBOOK_REEL`], [`FACEBOOK_STORY`]. Whether a feed post may
/// hold images and a video together, or several videos, is not documented: not refused here.
pub static FACEBOOK: MediaRules = MediaRules {
    platform: Platform::Facebook,
    sources: &[
        "https://developers.facebook.com/docs/graph-api/reference/page/photos/",
        "https://developers.facebook.com/docs/page-stories-api",
        "https://developers.facebook.com/docs/video-api/guides/publishing",
        "https://www.facebook.com/help/218673814818907",
    ],
    image: KindRules {
        types: Types::Only(&[JPEG, PNG, GIF]),
        max_bytes: Some(10 * MB),
        ..KindRules::ANY
    },
    video: KindRules {
        max_duration_ms: Some(240 * MIN),
        ..KindRules::ANY
    },
    mixed: true,
    max_videos: None,
};

/// Facebook Page reels (`postType: reel`, `POST /{page-id}/video_reels`): one video.
///
/// Source: <https://developers.facebook.com/docs/video-api/guides/reels-publishing>, "Video
/// Specifications": "Aspect Ratio | 9 x 16", "Resolution | 1080 x 1920 pixels (recommended).
/// Minimum is 540 x 960 pixels", "Duration | 3 to 90 seconds". The table marks what is only
/// recommended ("(recommended)": the .mp4 type, the 1080 x 1920 resolution); the aspect ratio is
/// not so marked, so a reel must be 9:16 (within `ASPECT_TOLERANCE_PERCENT`, for encoders'
/// rounding) and at least 540 x 960. A reel takes no image.
pub static FACEBOOK_REEL: MediaRules = MediaRules {
    platform: Platform::Facebook,
    sources: &["https://developers.facebook.com/docs/video-api/guides/reels-publishing"],
    image: KindRules::NONE,
    video: KindRules {
        min_duration_ms: Some(3 * SEC),
        max_duration_ms: Some(90 * SEC),
        aspect: Some(AspectRatio::new(9, 16)),
        min_width: Some(540),
        min_height: Some(960),
        ..KindRules::ANY
    },
    mixed: false,
    max_videos: Some(1),
};

/// Facebook Page stories (`postType: story`, `/{page-id}/photo_stories` or `/video_stories`): one
/// photo or one video.
///
/// Source: <https://developers.facebook.com/docs/page-stories-api>: photos ".jpeg, .bmp, .png,
/// .gif, .tiff", "Files can not exceed 10MB"; videos "Aspect Ratio | 9 x 16" (the same table as
/// reels', with the same "(recommended)" marks, so checked as for reels), "Minimum is 540 x 960
/// pixels", "3 to 90 seconds. A reel published as a story on a Facebook Page can not exceed 60
/// seconds" and, under Limitations, video stories "can not exceed 60 seconds": 3 to 60 seconds
/// is checked. No aspect ratio is given for photos.
pub static FACEBOOK_STORY: MediaRules = MediaRules {
    platform: Platform::Facebook,
    sources: &["https://developers.facebook.com/docs/page-stories-api"],
    image: KindRules {
        types: Types::Only(&[JPEG, PNG, GIF]),
        max_bytes: Some(10 * MB),
        ..KindRules::ANY
    },
    video: KindRules {
        min_duration_ms: Some(3 * SEC),
        max_duration_ms: Some(60 * SEC),
        aspect: Some(AspectRatio::new(9, 16)),
        min_width: Some(540),
        min_height: Some(960),
        ..KindRules::ANY
    },
    mixed: false,
    max_videos: Some(1),
};

/// LinkedIn, through the Community Management API (Images API, Videos API, Posts API).
///
/// Sources:
/// - <https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/images-api>:
///   JPG, GIF and PNG; images must have fewer than 36,152,320 pixels (GIFs up to 250 frames). No
///   file size limit is documented for images, so none is checked.
/// - <https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/videos-api>:
///   "Length: Three seconds to 30 minutes. File size: Between 75kb and 500MB. File format: MP4."
/// - <https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/posts-api>:
///   a post's `content` is one `media` (one image or one video) or a `multiImage` (images only).
///
/// Noted, not used: the Videos API's `fileSizeBytes` field says "Maximum allowed Videos size is
/// 5GB"; the page's own video specification says 500 MB, which is used. "75kb" is read as 75,000
/// bytes (the lenient reading of a minimum). Aspect ratios (1:2.4 to 2.4:1) appear only in
/// LinkedIn's ad specifications, not in the Videos API: not checked.
pub static LINKEDIN: MediaRules = MediaRules {
    platform: Platform::Linkedin,
    sources: &[
        "https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/images-api",
        "https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/videos-api",
        "https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/posts-api",
    ],
    image: KindRules {
        types: Types::Only(&[JPEG, PNG, GIF]),
        max_pixels: Some(36_152_320 - 1),
        ..KindRules::ANY
    },
    video: KindRules {
        types: Types::Only(&[MP4]),
        max_bytes: Some(500 * MB),
        min_bytes: Some(75 * KB),
        min_duration_ms: Some(3 * SEC),
        max_duration_ms: Some(30 * MIN),
        ..KindRules::ANY
    },
    mixed: false,
    max_videos: Some(1),
};

/// TikTok, through the Content Posting API (Direct Post of a video, or of photos).
///
/// Source: <https://developers.tiktok.com/doc/content-posting-api-media-transfer-guide>, "Video
/// restrictions": MP4 (recommended), WebM, MOV; "Minimum of 360 pixels for both height and width",
/// "Maximum of 4096 pixels for both height and width"; "The longest video a developer can send
/// via the initialize Upload Video endpoint is 10 minutes"; "Maximum of 4GB". "Image
/// restrictions": WebP and JPEG, "Maximum of 20MB for each image". A post is either one video or
/// a photo post (images only).
///
/// Not checked: a minimum duration (none is documented); the creator's own maximum (3, 5 or 10
/// minutes, read from `creator_info` when publishing; TikTok lets the user trim); images'
/// "Maximum 1080p", which does not say which side it bounds; the 23 to 60 FPS frame rate, which
/// the facts do not carry.
pub static TIKTOK: MediaRules = MediaRules {
    platform: Platform::Tiktok,
    sources: &["https://developers.tiktok.com/doc/content-posting-api-media-transfer-guide"],
    image: KindRules {
        types: Types::Only(&[JPEG, WEBP]),
        max_bytes: Some(20 * MB),
        ..KindRules::ANY
    },
    video: KindRules {
        types: Types::Only(&[MP4, WEBM, MOV]),
        max_bytes: Some(4 * GB),
        max_duration_ms: Some(10 * MIN),
        min_width: Some(360),
        max_width: Some(4096),
        min_height: Some(360),
        max_height: Some(4096),
        ..KindRules::ANY
    },
    mixed: false,
    max_videos: Some(1),
};

/// YouTube, through the YouTube Data API (`videos.insert`): videos only.
///
/// Source: <https://developers.google.com/youtube/v3/docs/videos/insert> ("Maximum file size:
/// 256GB", "Accepted Media MIME types: video/*, application/octet-stream"; one video per call).
///
/// Not checked: the 15-minute limit of unverified channels (a channel setting, not an API
/// limit, and not documented in the API reference).
pub static YOUTUBE: MediaRules = MediaRules {
    platform: Platform::Youtube,
    sources: &["https://developers.google.com/youtube/v3/docs/videos/insert"],
    image: KindRules::NONE,
    video: KindRules {
        max_bytes: Some(256 * GB),
        ..KindRules::ANY
    },
    mixed: false,
    max_videos: Some(1),
};

/// Snapchat, through the Public Profile API (Marketing API): media are uploaded to a public
/// profile (`POST /v1/public_profiles/{profile_id}/media`, "a container for a single video or
/// image") and posted as a story, saved story or spotlight.
///
/// Source: <https://developers.snap.com/api/marketing-api/Public-Profile-API/ProfileAssetManagement>
/// says the file "should adhere to the constraints listed in the story posting section", but that
/// section's figures could not be found in the documentation available here. So the values below
/// are conservative choices taken from publishing services' summaries, and must be checked
/// against Snap's story posting documentation: images JPEG or PNG, at most 5 MB (the smallest
/// figure quoted; others say 20 MB); video MP4 only (some also list MOV), 5 to 60 seconds (the
/// range most of them give; one says 3 to 60; Snap's Spotlight Guidelines say 5 to 60 for
/// Spotlight), at most 500 MB (one service says 32 MB, which is Snap's upload chunk size rather
/// than a file limit, so it is not used; another says 1 GB). One media item per post. A 9:16
/// aspect ratio is only recommended for stories: not checked. Spotlights have their own rules:
/// [`SNAPCHAT_SPOTLIGHT`].
pub static SNAPCHAT: MediaRules = MediaRules {
    platform: Platform::Snapchat,
    sources: &[
        "https://developers.snap.com/api/marketing-api/Public-Profile-API/ProfileAssetManagement",
    ],
    image: KindRules {
        types: Types::Only(&[JPEG, PNG]),
        max_bytes: Some(5 * MB),
        ..KindRules::ANY
    },
    video: KindRules {
        types: Types::Only(&[MP4]),
        max_bytes: Some(500 * MB),
        min_duration_ms: Some(5 * SEC),
        max_duration_ms: Some(60 * SEC),
        ..KindRules::ANY
    },
    mixed: false,
    max_videos: Some(1),
};

/// Snapchat Spotlight (`postType: spotlight`): one video, as [`SNAPCHAT`]'s, that is vertical.
///
/// Sources, Snap's own: the Spotlight Guidelines
/// (<https://help.snapchat.com/hc/en-us/articles/7012287256596>): "Snaps should be vertical
/// videos with sound 🔊 Still-image photos, horizontal Snaps, blurry Snaps, and text-only Snaps
/// won't show up in Spotlight", "Snaps must be a minimum of 5 seconds and can be up to 60
/// seconds long"; Snap's creator guide
/// (<https://creators.snap.com/learn-shine-in-the-spotlight-how-to-submit-to-spotlight>): "All
/// videos must be vertical and can be up to 60 seconds long". So a Spotlight video wider than it
/// is tall is refused, and 5 to 60 seconds (which [`SNAPCHAT`] takes from third parties) rests on
/// Snap's word here.
///
/// Not checked: a square video (neither vertical nor "horizontal"; Snap does not say how it
/// treats one); 9:16 and at least 540x960, which only third-party summaries give (as a
/// recommendation); type and size, which stay [`SNAPCHAT`]'s.
pub static SNAPCHAT_SPOTLIGHT: MediaRules = MediaRules {
    platform: Platform::Snapchat,
    sources: &[
        "https://help.snapchat.com/hc/en-us/articles/7012287256596",
        "https://creators.snap.com/learn-shine-in-the-spotlight-how-to-submit-to-spotlight",
        "https://developers.snap.com/api/marketing-api/Public-Profile-API/ProfileAssetManagement",
    ],
    image: KindRules::NONE,
    video: KindRules {
        max_aspect: Some(AspectRatio::new(1, 1)),
        ..SNAPCHAT.video
    },
    mixed: false,
    max_videos: Some(1),
};

/// Bluesky, through the AT Protocol lexicons a post's embed must satisfy.
///
/// Sources:
/// - <https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/embed/images.json>:
///   `images` `maxLength: 4`; each `image` blob `accept: ["image/*"]`, `maxSize: 2000000` ("May
///   be up to 2 MB, formerly limited to 1 MB").
/// - <https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/embed/video.json>:
///   `video` blob `accept: ["video/mp4"]`, `maxSize: 300000000` ("May be up to 300mb, formerly
///   limited to 100mb").
/// - <https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/feed/post.json>:
///   `embed` is one of images, video, external or record: images and a video cannot share a post.
/// - Duration: not in the lexicons (`app.bsky.video.startUpload` only names a `VideoTooLong`
///   error); Bluesky's announcement of March 2025 (<https://bsky.app/profile/bsky.app/post/3lk26lxn6sk2u>) raised the
///   limit from 60 seconds to 3 minutes, which is used.
///
/// Noted: older lexicons (and the figures often quoted) say 1,000,000 bytes per image and 100 MB
/// (earlier 50 MB) per video; the current lexicon is used. The Bluesky app accepts other video
/// formats and converts them, but the embed blob must be MP4.
pub static BLUESKY: MediaRules = MediaRules {
    platform: Platform::Bluesky,
    sources: &[
        "https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/embed/images.json",
        "https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/embed/video.json",
        "https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/feed/post.json",
    ],
    image: KindRules {
        // The lexicon takes 2,000,000 bytes; the connector (`soku_platforms::bluesky::IMAGE_LIMITS`)
        // uploads at most 1,000,000, as older PDSes require, so that is what is checked here.
        max_bytes: Some(1_000_000),
        ..KindRules::ANY
    },
    video: KindRules {
        types: Types::Only(&[MP4]),
        max_bytes: Some(300_000_000),
        max_duration_ms: Some(3 * MIN),
        ..KindRules::ANY
    },
    mixed: false,
    max_videos: Some(1),
};

/// Mastodon: every instance sets its own limits and reports them in `GET /api/v2/instance`
/// (`configuration.media_attachments`). Before an account's instance is known, these are
/// Mastodon's defaults, which is what an unmodified instance reports.
///
/// Sources:
/// - <https://docs.joinmastodon.org/entities/Instance/#media_attachments>
///   (`supported_mime_types`, `image_size_limit`, `image_matrix_limit`, `video_size_limit`,
///   `video_matrix_limit`).
/// - <https://github.com/mastodon/mastodon/blob/main/app/models/media_attachment.rb>, the
///   defaults: `IMAGE_LIMIT` 16 MB (16,777,216 bytes), `VIDEO_LIMIT` 99 MB (103,809,024 bytes),
///   `MAX_VIDEO_MATRIX_LIMIT` 8,294,400 pixels (3840x2160); images up to 33,177,600 pixels (the
///   `image_matrix_limit` default instances report); video types WebM, MP4, QuickTime, Ogg.
/// - Mastodon refuses a status that has a video and other media ("Cannot attach a video to a
///   post that already contains images"): one video, alone.
///
/// Not checked: the 120 FPS and 36,000-frame video limits (the facts carry neither); there is no
/// duration limit as such.
pub static MASTODON: MediaRules = MediaRules {
    platform: Platform::Mastodon,
    sources: &[
        "https://docs.joinmastodon.org/entities/Instance/#media_attachments",
        "https://github.com/mastodon/mastodon/blob/main/app/models/media_attachment.rb",
    ],
    image: KindRules {
        types: Types::Only(&[JPEG, PNG, GIF, WEBP]),
        max_bytes: Some(16_777_216),
        max_pixels: Some(33_177_600),
        ..KindRules::ANY
    },
    video: KindRules {
        types: Types::Only(&[MP4, WEBM, MOV]),
        max_bytes: Some(103_809_024),
        max_pixels: Some(8_294_400),
        ..KindRules::ANY
    },
    mixed: false,
    max_videos: Some(1),
};
