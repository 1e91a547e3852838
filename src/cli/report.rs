//! `kpidb report list | run | schedule`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::PinArgs;
use crate::engine::SessionHook;
use crate::functions::FunctionOptions;
use crate::report::{self, spec, Clock, Format, Reports, RunRequest, Scheduler};
use crate::{Error, Result};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// List the reports of reports.toml with their sections, formats and schedules
    List,
    /// Run a report now and write its files
    Run(RunArgs),
    /// Run the scheduled reports at their times, in the foreground (Ctrl-C stops)
    Schedule,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Report name (see `kpidb report list`)
    pub name: String,
    /// A parameter value, e.g. --param year=2023 (repeatable)
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = spec::parse_param)]
    pub params: Vec<(String, String)>,
    /// Write the files into DIR instead of the report's archive (<output_dir>/<name>/<time>/)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Only these formats (comma-separated: xlsx,html,md,csv) [default: the report's]
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub format: Vec<String>,
    /// Write the report even for a year with no data or when every section is empty
    #[arg(long)]
    pub allow_empty: bool,
    #[command(flatten)]
    pub pin: PinArgs,
}

pub async fn run(
    command: ReportCommand,
    reports: Reports,
    data: super::WarehouseAt,
    options: FunctionOptions,
    cluster: Option<crate::cluster::ClusterUrl>,
    zone: &chrono_tz::Tz,
) -> Result<()> {
    let hook = cluster.map(|url| Arc::new(url) as Arc<dyn SessionHook>);
    let reports_path = reports.path.clone();
    match command {
        ReportCommand::List => {
            outln!("reports in {}", reports_path.display());
            for report in reports.reports.values() {
                outln!("\n{}  {}", report.name, report.title);
                let params: Vec<String> = report
                    .params
                    .iter()
                    .map(|(k, v)| match v {
                        spec::Param::LatestYear => format!("{k}=latest"),
                        spec::Param::Int(i) => format!("{k}={i}"),
                        spec::Param::Text(s) => format!("{k}={s}"),
                    })
                    .collect();
                outln!(
                    "  params:   {}",
                    if params.is_empty() {
                        "(none)".into()
                    } else {
                        params.join(" ")
                    }
                );
                let formats: Vec<&str> = report.formats.iter().map(|f| f.extension()).collect();
                outln!("  formats:  {}", formats.join(", "));
                outln!(
                    "  output:   {}",
                    report::archive::report_dir(report).display()
                );
                match report.schedule_summary() {
                    Some(summary) => outln!("  schedule: {summary}"),
                    None => outln!("  schedule: (none; run by hand)"),
                }
                for (i, section) in report.sections.iter().enumerate() {
                    let source = section
                        .file
                        .as_ref()
                        .map(|f| f.display().to_string())
                        .unwrap_or_else(|| "inline SQL".into());
                    outln!("  {:>2}. {}  [{source}]", i + 1, section.title);
                }
            }
            Ok(())
        }
        ReportCommand::Run(args) => {
            let report = reports.get(&args.name)?;
            let formats = if args.format.is_empty() {
                None
            } else {
                let mut formats = Vec::new();
                for f in &args.format {
                    formats.push(Format::parse(f.trim()).ok_or_else(|| {
                        Error::usage(format!("--format {f}: use xlsx, html, md or csv"))
                    })?);
                }
                Some(formats)
            };
            let request = RunRequest {
                params: report.overrides(&args.params)?,
                as_of: args.pin.as_of(zone)?,
                out: args.out,
                formats,
                hook: hook.clone(),
                allow_empty: args.allow_empty,
            };
            let manifest =
                report::run_report(&data.open().await?, options, report, request).await?;
            outln!("{}: {}", report.name, report.title);
            for (name, value) in &manifest.params {
                match value {
                    serde_json::Value::String(text) => outln!("  {name} = {text}"),
                    other => outln!("  {name} = {other}"),
                }
            }
            outln!("  data versions {}", manifest.as_of_version);
            for section in &manifest.sections {
                let rows = if section.rows == 1 { "row " } else { "rows" };
                outln!("  {:>5} {rows}  {}", section.rows, section.title);
            }
            outln!("wrote:");
            for file in report::files(&manifest) {
                outln!("  {}", file.display());
            }
            for note in &manifest.notes {
                eprintln!("notice: {note}");
            }
            Ok(())
        }
        ReportCommand::Schedule => {
            let warehouse = data.open().await?;
            let scheduler = Scheduler::new(reports, Clock::system());
            if scheduler.scheduled().next().is_none() {
                return Err(Error::usage(format!(
                    "no report in {} has a schedule",
                    reports_path.display()
                )));
            }
            for report in scheduler.scheduled() {
                let summary = report.schedule_summary().unwrap_or_default();
                outln!("scheduled: {} {summary}", report.name);
            }
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            scheduler
                .run(
                    move |report, _due| {
                        crate::report::scheduled_run(
                            warehouse.clone(),
                            options,
                            hook.clone(),
                            report,
                        )
                    },
                    shutdown,
                )
                .await;
            outln!("kpidb report schedule: stopped");
            Ok(())
        }
    }
}
