//! Scenarios in the JSON format of Swift's `swift-ring-builder-analyzer` (ring.md §5.2):
//! a ring (part_power, replicas, overload, random_seed) and rounds of `add`, `remove` and
//! `set_weight` commands, each round followed by rebalances until the ring settles.
//!
//! The runner follows the analyzer's loop exactly (rebalance, pretend min_part_hours
//! passed, again until nothing moves or the balance changes by less than 1), so that the
//! same file run through Swift and through Ringsmith can be compared round by round.

use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use super::{BuilderError, NewDevice, RebalanceOptions, RingBuilder, MAX_BALANCE};

/// One command of a round.
#[derive(Clone, Debug, PartialEq)]
pub enum ScenarioCommand {
    Add(NewDevice),
    Remove(u32),
    SetWeight(u32, f64),
    /// `["save", path]`: accepted and ignored (the runner measures rebalances only).
    Save(String),
}

/// A parsed scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub part_power: u32,
    pub replicas: f64,
    pub overload: f64,
    pub random_seed: u64,
    pub rounds: Vec<Vec<ScenarioCommand>>,
}

/// One rebalance of a scenario run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenarioStep {
    pub round: usize,
    pub rebalance: usize,
    pub seconds: f64,
    pub moved: u64,
    pub balance: f64,
    pub dispersion: f64,
    pub removed: u64,
    pub finished: bool,
}

fn bad(msg: impl Into<String>) -> BuilderError {
    BuilderError::InvalidArgument(msg.into())
}

/// Swift's add value `[r<region>]z<zone>-<ip>:<port>[R<ip>:<port>]/<device>[_<meta>]`
/// (region 1 when omitted, as the analyzer's parser defaults it).
pub fn parse_scenario_add_value(value: &str) -> Result<NewDevice, BuilderError> {
    let invalid = || bad(format!("Invalid add value: {value}"));
    let digits = |s: &str| -> (Option<u32>, usize) {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        (s[..n].parse().ok(), n)
    };
    let mut rest = value;
    let mut region = 1;
    if let Some(r) = rest.strip_prefix('r') {
        let (v, n) = digits(r);
        region = v.ok_or_else(invalid)?;
        rest = &r[n..];
    }
    let z = rest.strip_prefix('z').ok_or_else(invalid)?;
    let (zone, n) = digits(z);
    let zone = zone.ok_or_else(invalid)?;
    rest = z[n..].strip_prefix('-').ok_or_else(invalid)?;
    let (ip, port, after) = parse_address(rest).ok_or_else(invalid)?;
    rest = after;
    let mut replication = None;
    if let Some(r) = rest.strip_prefix('R') {
        let (rip, rport, after) = parse_address(r).ok_or_else(invalid)?;
        replication = Some((rip, rport));
        rest = after;
    }
    let rest = rest.strip_prefix('/').ok_or_else(invalid)?;
    let (device, meta) = match rest.find('_') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    if device.is_empty() {
        return Err(bad("Invalid device name"));
    }
    Ok(NewDevice {
        id: None,
        region,
        zone,
        ip,
        port,
        replication_ip: replication.as_ref().map(|r| r.0.clone()),
        replication_port: replication.map(|r| r.1),
        device: device.to_string(),
        weight: 0.0,
        meta: meta.to_string(),
    })
}

fn parse_address(s: &str) -> Option<(String, u32, &str)> {
    let (ip, rest) = if let Some(v6) = s.strip_prefix('[') {
        let end = v6.find(']')?;
        (v6[..end].to_string(), &v6[end + 1..])
    } else {
        let end = s.find(':')?;
        (s[..end].to_string(), &s[end..])
    };
    let rest = rest.strip_prefix(':')?;
    let n = rest.bytes().take_while(u8::is_ascii_digit).count();
    Some((ip, rest[..n].parse().ok()?, &rest[n..]))
}

impl Scenario {
    /// Parse and check a scenario, with the analyzer's messages.
    pub fn from_json(text: &str) -> Result<Scenario, BuilderError> {
        let raw: Value = serde_json::from_str(text)
            .map_err(|e| bad(format!("Invalid JSON in scenario file: {e}")))?;
        let obj = raw
            .as_object()
            .ok_or_else(|| bad("Scenario must be a JSON object, not array or string"))?;
        let num = |key: &str| -> Result<f64, BuilderError> {
            obj.get(key)
                .ok_or_else(|| bad(format!("{key} missing")))?
                .as_f64()
                .ok_or_else(|| bad(format!("{key} not a number")))
        };
        let part_power = num("part_power")?;
        if !(1.0..=32.0).contains(&part_power) || part_power.fract() != 0.0 {
            return Err(bad(format!(
                "part_power must be between 1 and 32, but was {part_power}"
            )));
        }
        let replicas = num("replicas")?;
        if replicas < 1.0 {
            return Err(bad(format!(
                "replicas must be at least 1, but is {replicas:.6}"
            )));
        }
        let overload = num("overload")?;
        if overload < 0.0 {
            return Err(bad(format!(
                "overload must be non-negative, but is {overload:.6}"
            )));
        }
        let random_seed = num("random_seed")? as i64 as u64;
        let rounds = obj
            .get("rounds")
            .ok_or_else(|| bad("rounds missing"))?
            .as_array()
            .ok_or_else(|| bad("rounds must be an array"))?;
        let mut parsed = Vec::new();
        for (ri, round) in rounds.iter().enumerate() {
            let round = round
                .as_array()
                .ok_or_else(|| bad(format!("round {ri} not an array")))?;
            let mut cmds = Vec::new();
            for (ci, cmd) in round.iter().enumerate() {
                let where_ = format!("(round {ri}, command {ci})");
                let args = cmd
                    .as_array()
                    .ok_or_else(|| bad(format!("Invalid command {where_}: not an array")))?;
                let arg = |i: usize| {
                    args.get(i)
                        .ok_or_else(|| bad(format!("Invalid command {where_}: missing argument")))
                };
                let name = arg(0)?.as_str().unwrap_or("");
                let number = |i: usize| -> Result<f64, BuilderError> {
                    let v = arg(i)?;
                    v.as_f64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                        .ok_or_else(|| bad(format!("Invalid number {v} {where_}")))
                };
                cmds.push(match name {
                    "add" => {
                        let value = arg(1)?
                            .as_str()
                            .ok_or_else(|| bad(format!("Invalid add value {where_}")))?;
                        let mut dev = parse_scenario_add_value(value)?;
                        dev.weight = number(2)?;
                        ScenarioCommand::Add(dev)
                    }
                    "remove" => ScenarioCommand::Remove(number(1)? as u32),
                    "set_weight" => ScenarioCommand::SetWeight(number(1)? as u32, number(2)?),
                    "save" => ScenarioCommand::Save(arg(1)?.as_str().unwrap_or("").to_string()),
                    other => {
                        return Err(bad(format!(
                            "Unknown command {where_}: '{other}' should be one of add, remove, \
                             set_weight, save"
                        )))
                    }
                });
            }
            parsed.push(cmds);
        }
        Ok(Scenario {
            part_power: part_power as u32,
            replicas,
            overload,
            random_seed,
            rounds: parsed,
        })
    }

    /// Run every round like the analyzer; `each` sees every rebalance as it happens.
    pub fn run(&self, mut each: impl FnMut(&ScenarioStep)) -> Result<RingBuilder, BuilderError> {
        let mut rb = RingBuilder::new(self.part_power, self.replicas, 1)?;
        rb.set_overload(self.overload)?;
        let opts = RebalanceOptions {
            seed: Some(self.random_seed),
            now_secs: None,
        };
        for (ri, round) in self.rounds.iter().enumerate() {
            for cmd in round {
                match cmd {
                    ScenarioCommand::Add(dev) => {
                        rb.add_dev(dev.clone())?;
                    }
                    ScenarioCommand::Remove(id) => rb.remove_dev(*id)?,
                    ScenarioCommand::SetWeight(id, w) => rb.set_dev_weight(*id, *w)?,
                    ScenarioCommand::Save(_) => {}
                }
            }
            let mut old_balance: Option<f64> = None;
            for n in 1.. {
                let start = Instant::now();
                let out = rb.rebalance(&opts)?;
                let seconds = start.elapsed().as_secs_f64();
                rb.pretend_min_part_hours_passed();
                each(&ScenarioStep {
                    round: ri + 1,
                    rebalance: n,
                    seconds,
                    moved: out.changed_parts,
                    balance: out.balance,
                    dispersion: out.dispersion,
                    removed: out.removed_devs,
                    finished: out.finished,
                });
                if let Some(old) = old_balance {
                    if out.changed_parts == 0 && out.removed_devs == 0 {
                        break;
                    }
                    let both_max = old == MAX_BALANCE && out.balance == MAX_BALANCE;
                    if (out.balance - old).abs() < 1.0 && !both_max {
                        break;
                    }
                }
                if n >= 50 {
                    break;
                }
                old_balance = Some(out.balance);
            }
        }
        Ok(rb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_add_values() {
        let d = parse_scenario_add_value("r2z3-10.0.0.1:6200R10.1.0.1:6300/sdb_fast").unwrap();
        assert_eq!(
            (d.region, d.zone, d.port, d.device.as_str()),
            (2, 3, 6200, "sdb")
        );
        assert_eq!(d.replication_ip.as_deref(), Some("10.1.0.1"));
        assert_eq!(d.meta, "fast");
        let d = parse_scenario_add_value("z1-[::1]:6200/sda").unwrap();
        assert_eq!((d.region, d.ip.as_str()), (1, "::1"));
        assert!(parse_scenario_add_value("x1-10.0.0.1:6200/sda").is_err());
    }

    #[test]
    fn runs_a_scenario_like_the_analyzer() {
        let text = r#"{"part_power": 8, "replicas": 3, "overload": 0, "random_seed": 1,
            "rounds": [[["add", "r1z1-127.0.0.1:6200/sda", 100],
                        ["add", "r1z2-127.0.0.2:6200/sda", 100],
                        ["add", "r1z3-127.0.0.3:6200/sda", 100]],
                       [["add", "r1z4-127.0.0.4:6200/sda", 100]],
                       [["remove", 0]]]}"#;
        let scn = Scenario::from_json(text).unwrap();
        let mut steps = Vec::new();
        let rb = scn.run(|s| steps.push(s.clone())).unwrap();
        rb.validate(false).unwrap();
        assert_eq!(steps[0].moved, 768);
        let round2: u64 = steps.iter().filter(|s| s.round == 2).map(|s| s.moved).sum();
        assert_eq!(round2, 192);
        assert_eq!(
            steps
                .iter()
                .filter(|s| s.round == 3)
                .map(|s| s.removed)
                .sum::<u64>(),
            1
        );
        assert!(Scenario::from_json(r#"{"part_power": 40}"#).is_err());
        assert!(Scenario::from_json("[]")
            .unwrap_err()
            .to_string()
            .contains("JSON object"));
    }
}
