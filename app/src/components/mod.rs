//! Pieces that pages share: the theme switch, banners, tables, badges.

pub mod access;
pub mod banner;
pub mod link;
pub mod theme;
