//! Who is signed in, shared by every page through context.
use leptos::prelude::*;

use crate::api_types::{Me, Role};

#[derive(Clone, Copy)]
pub struct Session {
    /// The signed-in user, once `GET /api/me` has answered.
    pub me: RwSignal<Option<Me>>,
    /// True once we know (signed in or not).
    pub checked: RwSignal<bool>,
}

impl Session {
    pub fn new() -> Self {
        Session {
            me: RwSignal::new(None),
            checked: RwSignal::new(false),
        }
    }

    pub fn role(&self) -> Option<Role> {
        self.me.with(|m| m.as_ref().map(|m| m.user.role))
    }

    /// Admins and leads create and manage projects.
    pub fn can_manage(&self) -> bool {
        matches!(self.role(), Some(Role::Admin) | Some(Role::Lead))
    }

    pub fn is_admin(&self) -> bool {
        self.role() == Some(Role::Admin)
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

pub fn use_session() -> Session {
    use_context::<Session>().expect("Session is provided by App")
}
