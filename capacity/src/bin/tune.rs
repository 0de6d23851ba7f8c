//! `tune`: one step per memory size, print each step, the table and the recommendation, write
//! tune.json and tune.html, and set the functions back to their sizes. Exit 0 when a size met
//! the SLO, 3 when none did, 2 for bad flags, 1 for an error, 130 on Ctrl-C or SIGTERM (the
//! sizes set back first in every case).

use std::process::ExitCode;

use contract::cli::Exit;

use capacity::live::Live;
use capacity::tune::opts::TuneOpts;
use capacity::tune::page;
use capacity::tune::run::{current_sizes, restore, tune};

fn main() -> ExitCode {
    let opts = match contract::cli::parse::<TuneOpts>("tune") {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    if opts.check_only {
        return match opts.check_flags() {
            Ok(_) => Exit::Success.into(),
            Err(reason) => {
                eprintln!("tune: {reason}");
                Exit::BadInput.into()
            }
        };
    }
    let config = match opts.check(|k| std::env::var(k).ok(), contract::epoch_ms()) {
        Ok(config) => config,
        Err(reason) => {
            eprintln!("tune: {reason}");
            return Exit::BadInput.into();
        }
    };
    // Before the steps, so that a bad --out fails at once, not after them.
    if let Err(e) = std::fs::create_dir_all(&config.live.out) {
        eprintln!("tune: --out {}: {e}", config.live.out.display());
        return Exit::BadInput.into();
    }
    let runtime = match contract::cli::runtime("tune", Some(1)) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let sdk = collector::aws::sdk_config(&config.aws).await;
        let control = aws_sdk_lambda::Client::new(&sdk);
        let api = collector::aws::CloudWatch::new(aws_sdk_cloudwatch::Client::new(&sdk));
        let current = current_sizes(&control, &config.functions).await?;
        let mut live = Live::new(config.live.clone(), api.clone());
        let stop = live.stop.clone();
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let tuning = tune(&mut live, &api, &control, &config, &current, |step| {
            eprintln!("{}", page::step_line(step))
        });
        let outcome = tokio::select! {
            file = tuning => Some(file),
            _ = tokio::signal::ctrl_c() => None,
            _ = terminate.recv() => None,
        };
        if outcome.is_none() {
            stop.request();
        }
        // Whatever happened, the functions get their sizes back.
        let restored = restore(&control, &config, &current).await;
        let Some(file) = outcome else {
            restored?;
            return Ok(None);
        };
        let file = file?;
        restored?;
        let json = config.live.out.join("tune.json");
        std::fs::write(&json, file.to_json())?;
        let html = config.live.out.join("tune.html");
        std::fs::write(&html, page::html(&file)?)?;
        println!("{}", page::text_table(&file));
        eprintln!("tune: wrote {} and {}", json.display(), html.display());
        anyhow::Ok(Some(file))
    });
    match result {
        Ok(Some(file)) => {
            println!("{}", page::verdict(&file));
            if file.cheapest.is_some() {
                Exit::Success.into()
            } else {
                Exit::NotComplete.into()
            }
        }
        Ok(None) => {
            eprintln!("tune: interrupted; the functions' sizes were set back; wrote no result");
            Exit::Interrupted.into()
        }
        Err(e) => contract::cli::fail("tune", e),
    }
}
