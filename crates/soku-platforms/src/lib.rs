//! Connectors to the social networks. Each implements `soku_core::connector::Connector`.
//! `simulated` stands in for every network in test mode (spec section 9).

pub mod simulated;
