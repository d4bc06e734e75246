//! Pieces that pages share: the theme switch, banners, tables, badges.

pub mod access;
pub mod banner;
pub mod form;
pub mod format;
pub mod link;
pub mod stat;
pub mod theme;
pub mod tick;
