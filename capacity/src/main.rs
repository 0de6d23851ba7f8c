//! `capacity`: search, print each step and the verdict, write capacity.json and capacity.html.
//! Exit 0 when a rate was sustained, 3 when none was, 2 for bad flags, 1 for an error, 130 on
//! Ctrl-C or SIGTERM.

use std::process::ExitCode;

use contract::cli::Exit;

use capacity::live::Live;
use capacity::opts::Opts;
use capacity::page;
use capacity::search::search;

fn main() -> ExitCode {
    let opts = match contract::cli::parse::<Opts>("capacity") {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    let checked = match opts.check(|k| std::env::var(k).ok(), contract::epoch_ms()) {
        Ok(checked) => checked,
        Err(reason) => {
            eprintln!("capacity: {reason}");
            return Exit::BadInput.into();
        }
    };
    // Before the search, so that a bad --out fails at once, not after it.
    if let Err(e) = std::fs::create_dir_all(&checked.live.out) {
        eprintln!("capacity: --out {}: {e}", checked.live.out.display());
        return Exit::BadInput.into();
    }
    let runtime = match contract::cli::runtime("capacity", Some(1)) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let out = checked.live.out.clone();
        let profile = checked.live.resources.profile.clone();
        let sdk = collector::aws::sdk_config(&checked.aws).await;
        let api = collector::aws::CloudWatch::new(aws_sdk_cloudwatch::Client::new(&sdk));
        let mut live = Live::new(checked.live, api);
        let stop = live.stop.clone();
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let searching = search(&mut live, &checked.search, &checked.run_prefix, |step| {
            eprintln!("{}", page::step_line(step))
        });
        let mut file = tokio::select! {
            file = searching => file?,
            _ = tokio::signal::ctrl_c() => {
                stop.request();
                return Ok(None);
            }
            _ = terminate.recv() => {
                stop.request();
                return Ok(None);
            }
        };
        file.limiting_quota = capacity::search::limiting_quota(&file.steps, profile.as_deref());
        let json = out.join("capacity.json");
        std::fs::write(&json, file.to_json())?;
        let html = out.join("capacity.html");
        std::fs::write(&html, page::html(&file)?)?;
        eprintln!("capacity: wrote {} and {}", json.display(), html.display());
        anyhow::Ok(Some(file))
    });
    match result {
        Ok(Some(file)) => {
            println!("{}", page::verdict(&file));
            if file.sustained_loops_per_s.is_some() {
                Exit::Success.into()
            } else {
                Exit::NotComplete.into()
            }
        }
        Ok(None) => {
            eprintln!("capacity: interrupted; wrote no result");
            Exit::Interrupted.into()
        }
        Err(e) => contract::cli::fail("capacity", e),
    }
}
