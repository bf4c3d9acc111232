//! A new password typed twice: used by the account page (one's own) and the users page (an
//! admin's reset), so both check the same things before asking the server.
use leptos::prelude::*;

use crate::api_types::MIN_PASSWORD_LEN;

/// What is wrong with a new password and its repetition, if anything (the server checks the
/// length again; this saves a round trip and says which field to fix).
pub fn check_new_password(password: &str, repeat: &str) -> Result<(), NewPasswordProblem> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(NewPasswordProblem::TooShort);
    }
    if password != repeat {
        return Err(NewPasswordProblem::Mismatch);
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewPasswordProblem {
    TooShort,
    Mismatch,
}

impl NewPasswordProblem {
    pub fn message(self) -> String {
        match self {
            NewPasswordProblem::TooShort => {
                format!("The new password needs at least {MIN_PASSWORD_LEN} characters.")
            }
            NewPasswordProblem::Mismatch => "The two new passwords differ; type it again.".to_string(),
        }
    }
}

/// Two password inputs, "New password" and "Repeat it", with the given element ids (for
/// moving focus to the field at fault).
#[component]
pub fn NewPasswordFields(
    password: RwSignal<String>,
    repeat: RwSignal<String>,
    id_password: &'static str,
    id_repeat: &'static str,
    #[prop(into, default = "New password".into())] label: String,
) -> impl IntoView {
    view! {
        <label class="field">
            <span class="field-label">{label}</span>
            <input id=id_password class="input" type="password" autocomplete="new-password" bind:value=password/>
        </label>
        <label class="field">
            <span class="field-label">"Repeat it"</span>
            <input id=id_repeat class="input" type="password" autocomplete="new-password" bind:value=repeat/>
        </label>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_are_checked_for_length_then_repetition() {
        assert_eq!(check_new_password("short", "short"), Err(NewPasswordProblem::TooShort));
        assert_eq!(check_new_password("long enough", "long enougH"), Err(NewPasswordProblem::Mismatch));
        assert_eq!(check_new_password("long enough", "long enough"), Ok(()));
        // Characters, not bytes: eight accented letters are long enough.
        assert_eq!(check_new_password("éééééééé", "éééééééé"), Ok(()));
        assert!(NewPasswordProblem::TooShort.message().contains('8'));
    }
}
