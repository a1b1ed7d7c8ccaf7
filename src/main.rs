#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    /// Runs the static constructors (pliron, under CubeCL, registers its IR ops with `inventory`).
    /// The linker synthesises it.
    fn __wasm_call_ctors();
}

#[cfg(target_arch = "wasm32")]
fn main() {
    use googlenet_web::app::App;
    use leptos::prelude::*;

    // Calling the constructors once, here, makes this a "reactor" module for wasm-ld. Without this
    // call it wraps *every* export in a call to them: every DOM callback and every value that crosses
    // into wasm re-ran all of pliron's registrations, which cost the page 1.5 s at the end of an epoch.
    // SAFETY: runs once, first, before any code that could depend on what the constructors register.
    unsafe { __wasm_call_ctors() };
    console_error_panic_hook::set_once();
    // This module also runs in the training worker, which has no page to mount.
    if googlenet_web::worker::in_worker() {
        return googlenet_web::worker::start_in_worker();
    }
    leptos::mount::mount_to_body(|| view! { <App /> });
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("This is the browser app: run `scripts/serve.sh` (trunk serve) and open http://127.0.0.1:8080");
}
