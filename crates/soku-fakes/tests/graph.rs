//! Tests of the Graph API fake (`soku_fakes::graph`): its drift check against Meta's API specs
//! (`graph/specs.rs`) and the flows the Instagram and Facebook Page connectors will run
//! (`graph/flows.rs`, Page reels and stories in `graph/reels.rs`), over real HTTP on loopback.

#[path = "graph/flows.rs"]
mod flows;
#[path = "graph/http.rs"]
mod http;
#[path = "graph/reels.rs"]
mod reels;
#[path = "graph/specs.rs"]
mod specs;
