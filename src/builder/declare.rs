//! Declarative rings: the devices and weights a ring should have, and the next safe step
//! from a builder towards them.
//!
//! A step changes weights by at most `max_weight_step` of the spec's total weight (the sum
//! of every device's |weight change|), so the data a step moves is capped; the rebalance
//! after it still honours `min_part_hours`. A device that leaves the spec is drained to
//! weight 0 in such steps first and removed by a later step, once it holds nothing new.
//! Devices are matched by `ip`, `port` and `device`; region and zone cannot change in place.

use serde::{Deserialize, Serialize};

use super::{NewDevice, RingBuilder};

/// The desired state, as read from the TOML spec.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    #[serde(default)]
    pub ring: RingSettings,
    #[serde(default)]
    pub policy: StepPolicy,
    #[serde(default, rename = "device")]
    pub devices: Vec<SpecDevice>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RingSettings {
    pub min_part_hours: Option<u32>,
    pub overload: Option<f64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StepPolicy {
    /// Largest total |weight change| per step, as a fraction of the spec's total weight.
    pub max_weight_step: f64,
    /// The ring is done when its balance (percent) is at most this, or no rebalance can
    /// improve it.
    pub balance_tolerance: f64,
}

impl Default for StepPolicy {
    fn default() -> Self {
        StepPolicy {
            max_weight_step: 0.25,
            balance_tolerance: 1.0,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpecDevice {
    pub region: u32,
    pub zone: u32,
    pub ip: String,
    pub port: u32,
    pub device: String,
    pub weight: f64,
    pub replication_ip: Option<String>,
    pub replication_port: Option<u32>,
    #[serde(default)]
    pub meta: String,
}

impl SpecDevice {
    pub fn describe(&self) -> String {
        format!(
            "r{}z{}-{}:{}/{}",
            self.region,
            self.zone,
            crate::device::bracket_ipv6(&self.ip),
            self.port,
            self.device
        )
    }
}

/// One device's way from the builder to the spec.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DeviceChange {
    /// `add`, `weight`, `drain`, `remove`.
    pub action: &'static str,
    pub id: Option<u32>,
    pub device: String,
    pub from_weight: f64,
    pub to_weight: f64,
}

/// Everything between the builder and the spec.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Diff {
    pub changes: Vec<DeviceChange>,
    /// Ring settings to set: (name, from, to).
    pub settings: Vec<(String, f64, f64)>,
    /// Sum of |weight change| over all devices.
    pub total_weight_change: f64,
    pub spec_total_weight: f64,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.settings.is_empty()
    }

    /// Weight steps still needed (at least one per pending removal).
    pub fn steps_needed(&self, policy: &StepPolicy) -> u64 {
        let cap = policy.max_weight_step * self.spec_total_weight.max(f64::MIN_POSITIVE);
        let weight_steps = (self.total_weight_change / cap - 1e-9).ceil().max(0.0) as u64;
        let removal_pending = self
            .changes
            .iter()
            .any(|c| c.action != "add" && c.to_weight == 0.0 && c.action != "weight");
        if weight_steps == 0 && !self.is_empty() {
            1
        } else {
            weight_steps + u64::from(removal_pending && weight_steps > 0)
        }
    }
}

/// Checks the spec on its own and against the builder; the error says what is wrong.
pub fn validate(spec: &Spec, builder: &RingBuilder) -> Result<(), String> {
    let p = &spec.policy;
    if !(p.max_weight_step > 0.0 && p.max_weight_step <= 1.0) {
        return Err(format!(
            "policy.max_weight_step must be in (0, 1], not {}",
            p.max_weight_step
        ));
    }
    if !(p.balance_tolerance >= 0.0 && p.balance_tolerance.is_finite()) {
        return Err("policy.balance_tolerance must be a number >= 0".into());
    }
    if spec.devices.is_empty() {
        return Err("the spec lists no [[device]]".into());
    }
    for (i, d) in spec.devices.iter().enumerate() {
        if !(d.weight.is_finite() && d.weight >= 0.0) {
            return Err(format!(
                "device {} has an invalid weight {}",
                d.describe(),
                d.weight
            ));
        }
        if spec.devices[..i]
            .iter()
            .any(|o| o.ip == d.ip && o.port == d.port && o.device == d.device)
        {
            return Err(format!("device {} is listed twice", d.describe()));
        }
        if let Some(existing) = find(builder, d) {
            let e = &builder.dev(existing).expect("found").dev;
            if e.region != d.region || e.zone != d.zone {
                return Err(format!(
                    "device {} is in r{}z{} in the builder: region and zone cannot change in \
                     place; give the new location a new device entry and drop the old one",
                    d.describe(),
                    e.region,
                    e.zone
                ));
            }
        }
    }
    if spec.devices.iter().map(|d| d.weight).sum::<f64>() <= 0.0 {
        return Err("the spec's total weight is 0".into());
    }
    if builder.next_part_power.is_some() {
        return Err("a partition power increase is in progress; finish it first".into());
    }
    Ok(())
}

fn find(builder: &RingBuilder, d: &SpecDevice) -> Option<u32> {
    builder
        .iter_devs()
        .find(|b| {
            b.dev.ip == super::normalize_address(&d.ip)
                && b.dev.port == d.port
                && b.dev.device == d.device
                && !builder.is_marked_for_removal(b.dev.id)
        })
        .map(|b| b.dev.id)
}

/// What separates the builder from the spec.
pub fn diff(spec: &Spec, builder: &RingBuilder) -> Diff {
    let mut out = Diff {
        spec_total_weight: spec.devices.iter().map(|d| d.weight).sum(),
        ..Diff::default()
    };
    for d in &spec.devices {
        match find(builder, d) {
            None => out.changes.push(DeviceChange {
                action: "add",
                id: None,
                device: d.describe(),
                from_weight: 0.0,
                to_weight: d.weight,
            }),
            Some(id) => {
                let w = builder.dev(id).expect("found").dev.weight;
                if w != d.weight {
                    out.changes.push(DeviceChange {
                        action: "weight",
                        id: Some(id),
                        device: d.describe(),
                        from_weight: w,
                        to_weight: d.weight,
                    });
                }
            }
        }
    }
    for b in builder.iter_devs() {
        if builder.is_marked_for_removal(b.dev.id) {
            continue;
        }
        let wanted = spec
            .devices
            .iter()
            .any(|d| find(builder, d) == Some(b.dev.id));
        if !wanted {
            out.changes.push(DeviceChange {
                action: if b.dev.weight > 0.0 {
                    "drain"
                } else {
                    "remove"
                },
                id: Some(b.dev.id),
                device: format!(
                    "r{}z{}-{}:{}/{}",
                    b.dev.region,
                    b.dev.zone,
                    crate::device::bracket_ipv6(&b.dev.ip),
                    b.dev.port,
                    b.dev.device
                ),
                from_weight: b.dev.weight,
                to_weight: 0.0,
            });
        }
    }
    out.total_weight_change = out
        .changes
        .iter()
        .map(|c| (c.to_weight - c.from_weight).abs())
        .sum();
    if let Some(h) = spec.ring.min_part_hours {
        if h != builder.min_part_hours {
            out.settings.push((
                "min_part_hours".into(),
                builder.min_part_hours as f64,
                h as f64,
            ));
        }
    }
    if let Some(o) = spec.ring.overload {
        if o != builder.overload {
            out.settings.push(("overload".into(), builder.overload, o));
        }
    }
    out
}

/// The changes of the next step: every weight moved towards its target by the same
/// fraction, so that their total is at most the cap; devices already at weight 0 and out
/// of the spec are removed.
pub fn next_step(spec: &Spec, diff: &Diff) -> Vec<DeviceChange> {
    let cap = spec.policy.max_weight_step * diff.spec_total_weight;
    let movable: f64 = diff
        .changes
        .iter()
        .filter(|c| c.action != "remove")
        .map(|c| (c.to_weight - c.from_weight).abs())
        .sum();
    // Rounded weights may leave a hair over the cap; that is not worth another step.
    let scale = if movable <= cap * (1.0 + 1e-6) {
        1.0
    } else {
        cap / movable
    };
    diff.changes
        .iter()
        .map(|c| {
            let mut step = c.clone();
            if c.action != "remove" {
                let w = c.from_weight + (c.to_weight - c.from_weight) * scale;
                // Snap: floating error must not leave a 1e-13 remainder for another step.
                step.to_weight = if (w - c.to_weight).abs() < 1e-9 {
                    c.to_weight
                } else {
                    (w * 1e6).round() / 1e6
                };
            }
            step
        })
        .collect()
}

/// Applies one step's changes and the ring settings to the builder (no rebalance).
pub fn apply_step(
    spec: &Spec,
    step: &[DeviceChange],
    builder: &mut RingBuilder,
) -> Result<(), String> {
    if let Some(h) = spec.ring.min_part_hours {
        if h != builder.min_part_hours {
            builder.set_min_part_hours(h);
        }
    }
    if let Some(o) = spec.ring.overload {
        if o != builder.overload {
            builder.set_overload(o).map_err(|e| e.to_string())?;
        }
    }
    for c in step {
        match (c.action, c.id) {
            ("add", _) => {
                let d = spec
                    .devices
                    .iter()
                    .find(|d| d.describe() == c.device)
                    .expect("the step came from this spec");
                builder
                    .add_dev(NewDevice {
                        id: None,
                        region: d.region,
                        zone: d.zone,
                        ip: d.ip.clone(),
                        port: d.port,
                        replication_ip: d.replication_ip.clone(),
                        replication_port: d.replication_port,
                        device: d.device.clone(),
                        weight: c.to_weight,
                        meta: d.meta.clone(),
                    })
                    .map_err(|e| e.to_string())?;
            }
            ("remove", Some(id)) => builder.remove_dev(id).map_err(|e| e.to_string())?,
            (_, Some(id)) => builder
                .set_dev_weight(id, c.to_weight)
                .map_err(|e| e.to_string())?,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(devs: &[(&str, f64)], step: f64) -> Spec {
        Spec {
            ring: RingSettings::default(),
            policy: StepPolicy {
                max_weight_step: step,
                balance_tolerance: 1.0,
            },
            devices: devs
                .iter()
                .map(|(ip, w)| SpecDevice {
                    region: 1,
                    zone: 1,
                    ip: ip.to_string(),
                    port: 6200,
                    device: "sda".into(),
                    weight: *w,
                    replication_ip: None,
                    replication_port: None,
                    meta: String::new(),
                })
                .collect(),
        }
    }

    fn builder(devs: &[(&str, f64)]) -> RingBuilder {
        let mut b = RingBuilder::new(6, 3.0, 0).unwrap();
        let s = spec(devs, 1.0);
        apply_step(&s, &next_step(&s, &diff(&s, &b)), &mut b).unwrap();
        b
    }

    #[test]
    fn steps_are_capped_and_converge() {
        let mut b = builder(&[
            ("127.0.0.1", 100.0),
            ("127.0.0.2", 100.0),
            ("127.0.0.3", 100.0),
        ]);
        let want = spec(
            &[
                ("127.0.0.1", 200.0),
                ("127.0.0.2", 100.0),
                ("127.0.0.4", 100.0),
            ],
            0.25,
        );
        validate(&want, &b).unwrap();
        let mut steps = 0;
        loop {
            let d = diff(&want, &b);
            if d.is_empty() {
                break;
            }
            let step = next_step(&want, &d);
            let moved: f64 = step
                .iter()
                .map(|c| (c.to_weight - c.from_weight).abs())
                .sum();
            assert!(moved <= 100.0 * (1.0 + 1e-6) + 1e-5, "step moved {moved}");
            apply_step(&want, &step, &mut b).unwrap();
            steps += 1;
            assert!(steps < 10);
        }
        assert_eq!(steps, 4, "3 weight steps of 100, then the removal");
        let ids: Vec<String> = b
            .iter_devs()
            .filter(|d| !b.is_marked_for_removal(d.dev.id))
            .map(|d| d.dev.ip.clone())
            .collect();
        assert_eq!(ids, ["127.0.0.1", "127.0.0.2", "127.0.0.4"]);
    }

    #[test]
    fn zone_moves_and_duplicates_are_refused() {
        let b = builder(&[("127.0.0.1", 100.0)]);
        let mut s = spec(&[("127.0.0.1", 100.0)], 0.5);
        s.devices[0].zone = 2;
        assert!(validate(&s, &b)
            .unwrap_err()
            .contains("cannot change in place"));
        let s = spec(&[("127.0.0.1", 1.0), ("127.0.0.1", 2.0)], 0.5);
        assert!(validate(&s, &b).unwrap_err().contains("listed twice"));
        let s = spec(&[("127.0.0.1", 1.0)], 0.0);
        assert!(validate(&s, &b).is_err());
    }
}
