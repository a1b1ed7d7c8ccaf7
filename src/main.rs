#[cfg(target_arch = "wasm32")]
fn main() {
    use googlenet_web::app::App;
    use leptos::prelude::*;

    console_error_panic_hook::set_once();
    // This module also runs in the training worker, which has no page to mount.
    if googlenet_web::worker::in_worker() {
        return googlenet_web::worker::start_training_worker();
    }
    leptos::mount::mount_to_body(|| view! { <App /> });
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("This is the browser app: run `scripts/serve.sh` (trunk serve) and open http://127.0.0.1:8080");
}
