//! The draft form: stratification, size or the size calculator, minimum, must-include and
//! exclusions. The plan (next card) says which requirement drove the size.
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::state::{Devset, DraftForm, ProfileSummary};
use crate::api_client;
use crate::components::{Status, StatusLine};

#[component]
pub fn DraftCard(
    pid: i64,
    profiles: RwSignal<Vec<ProfileSummary>>,
    on_created: impl Fn(i64) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let form = RwSignal::new(DraftForm { mode: "calculator".into(), accuracy: "0.9".into(), half_width: "3".into(), ..Default::default() });
    let status = RwSignal::new(None::<Status>);
    let field = move |get: fn(&DraftForm) -> &String, set: fn(&mut DraftForm, String)| {
        (
            move || form.with(|f| get(f).clone()),
            move |ev: leptos::ev::Event| form.update(|f| set(f, event_target_value(&ev))),
        )
    };
    let (name, set_name) = field(|f| &f.name, |f, v| f.name = v);
    let (attrs, set_attrs) = field(|f| &f.attributes, |f, v| f.attributes = v);
    let (size, set_size) = field(|f| &f.size, |f, v| f.size = v);
    let (acc, set_acc) = field(|f| &f.accuracy, |f, v| f.accuracy = v);
    let (hw, set_hw) = field(|f| &f.half_width, |f, v| f.half_width = v);
    let (key, set_key) = field(|f| &f.key_attribute, |f, v| f.key_attribute = v);
    let (khw, set_khw) = field(|f| &f.key_half_width, |f, v| f.key_half_width = v);
    let (min, set_min) = field(|f| &f.min_per_stratum, |f, v| f.min_per_stratum = v);
    let (lic, set_lic) = field(|f| &f.exclude_licenses, |f, v| f.exclude_licenses = v);
    let (src, set_src) = field(|f| &f.exclude_sources, |f, v| f.exclude_sources = v);
    let (seed, set_seed) = field(|f| &f.seed, |f, v| f.seed = v);
    let is_size = move || form.with(|f| f.mode == "size");

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut f = form.get_untracked();
        if f.profile_id.is_none() {
            f.profile_id = profiles.with_untracked(|p| p.first().map(|p| p.id));
        }
        let request = match f.to_request() {
            Ok(r) => r,
            Err(m) => {
                status.set(Status::error(m));
                return;
            }
        };
        status.set(Status::info("Planning…"));
        spawn_local(async move {
            match api_client::send::<_, Devset>("POST", &format!("/api/projects/{pid}/devsets"), &request).await {
                Ok(d) => {
                    status.set(Status::ok(format!("Draft “{}” saved; its plan is below.", d.name)));
                    on_created(d.id);
                }
                Err(e) => status.set(Status::api(&e)),
            }
        });
    };

    view! {
        <form class="card form-card" on:submit=submit novalidate aria-labelledby="draft-h">
            <h2 id="draft-h">"New dev-set draft"</h2>
            <div class="form-grid">
                <label class="field">
                    <span class="field-label">"Name"</span>
                    <input id="dv-name" class="input" type="text" prop:value=name on:input=set_name/>
                </label>
                <label class="field">
                    <span class="field-label">"Profile"</span>
                    <select class="input" on:change=move |ev| {
                        let v = event_target_value(&ev).parse().ok();
                        form.update(|f| f.profile_id = v);
                    }>
                        {move || profiles.get().into_iter().map(|p| view! {
                            <option value=p.id.to_string()>{format!("{} ({})", p.name, p.date)}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label class="field field-wide">
                    <span class="field-label">"Stratify by (comma-separated meta attributes)"</span>
                    <input id="dv-attrs" class="input" type="text" placeholder="region, device" prop:value=attrs on:input=set_attrs/>
                </label>
                <fieldset class="field field-wide">
                    <legend class="field-label">"Size"</legend>
                    <div class="radio-row">
                        <label class="radio">
                            <input type="radio" name="dv-mode" value="calculator" prop:checked=move || !is_size()
                                on:change=move |_| form.update(|f| f.mode = "calculator".into())/>
                            " Size calculator"
                        </label>
                        <label class="radio">
                            <input type="radio" name="dv-mode" value="size" prop:checked=is_size
                                on:change=move |_| form.update(|f| f.mode = "size".into())/>
                            " Fixed size"
                        </label>
                    </div>
                </fieldset>
                <Show when=is_size>
                    <label class="field field-small">
                        <span class="field-label">"Items"</span>
                        <input class="input" type="number" min="1" prop:value=size on:input=set_size/>
                    </label>
                </Show>
                <Show when=move || !is_size()>
                    <label class="field field-small">
                        <span class="field-label">"Expected accuracy"</span>
                        <input id="dv-acc" class="input" type="text" prop:value=acc on:input=set_acc/>
                    </label>
                    <label class="field field-small">
                        <span class="field-label">"± points overall"</span>
                        <input id="dv-hw" class="input" type="text" prop:value=hw on:input=set_hw/>
                    </label>
                    <label class="field field-small">
                        <span class="field-label">"Key attribute (optional)"</span>
                        <input id="dv-key" class="input" type="text" prop:value=key on:input=set_key/>
                    </label>
                    <label class="field field-small">
                        <span class="field-label">"± points per value"</span>
                        <input id="dv-khw" class="input" type="text" prop:value=khw on:input=set_khw/>
                    </label>
                </Show>
                <label class="field field-small">
                    <span class="field-label">"Minimum per stratum"</span>
                    <input class="input" type="number" min="0" prop:value=min on:input=set_min/>
                    <span class="hint">"a floor, not an addition"</span>
                </label>
                <label class="field field-small">
                    <span class="field-label">"Exclude licences"</span>
                    <input class="input" type="text" prop:value=lic on:input=set_lic/>
                </label>
                <label class="field field-small">
                    <span class="field-label">"Exclude sources"</span>
                    <input class="input" type="text" prop:value=src on:input=set_src/>
                </label>
                <label class="field field-small">
                    <span class="field-label">"Seed"</span>
                    <input class="input" type="number" min="0" prop:value=seed on:input=set_seed/>
                </label>
            </div>
            <p class="hint">"Items already in another dev set are always excluded."</p>
            <button class="btn btn-primary" type="submit">"Save draft and plan"</button>
            <StatusLine status/>
        </form>
    }
    .into_any()
}
