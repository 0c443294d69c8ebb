//! Usage texts. Swift prints a command's usage (and exits 2) when its arguments do not fit;
//! these say the same syntax in Ringsmith's own words.

pub const SEARCH_VALUE: &str = "\
<search-value>: d<id>r<region>z<zone>-<ip>:<port>R<r_ip>:<r_port>/<device>_<meta>
    Every part is optional, but at least one must be given; parts must come in this order.
    The ip needs its leading '-' only after d<id>, r<region> or z<zone>; IPv6 goes in [].
    Examples:
        d74              device id 74
        r4               devices in region 4
        z1-1.2.3.4       devices in zone 1 with ip 1.2.3.4
        1.2.3.4          devices with ip 1.2.3.4, any zone
        z1:6200          devices in zone 1 on port 6200
        :6200            devices on port 6200
        R5.6.7.8         devices with replication ip 5.6.7.8
        R:6300           devices with replication port 6300
        /sdb1            devices named sdb1
        _shiny           devices whose meta contains 'shiny'
        [::1]            devices with ip ::1
        z1-[::1]:6200    zone 1, ip ::1, port 6200
    Instead of a search value, the options --id --region --zone --ip --port --replication-ip
    --replication-port --device --meta --weight select devices (not both at once).";

const SELECTOR_OPTIONS: &str = "\
    --id <id> --region <region> --zone <zone> --ip <ip or hostname> --port <port>
    --replication-ip <r_ip or r_hostname> --replication-port <r_port>
    --device <device_name> --meta <meta> --weight <weight>";

pub fn command_usage(command: &str) -> String {
    let p = "ringsmith ring <builder_file>";
    match command {
        "default" => format!(
            "{p}\n    Shows the ring's parameters and its devices (flags: DEL = marked for removal).\n    --json prints the same as a JSON document."
        ),
        "create" => format!(
            "{p} create <part_power> <replicas> <min_part_hours>\n    Creates a builder with 2^<part_power> partitions and <replicas> replicas; a partition\n    moves at most once per <min_part_hours> hours."
        ),
        "add" => format!(
            "{p} add\n    [r<region>]z<zone>-<ip>:<port>[R<r_ip>:<r_port>]/<device_name>_<meta> <weight>\n    [[r<region>]z<zone>-<ip>:<port>[R<r_ip>:<r_port>]/<device_name>_<meta> <weight>] ...\nor\n{p} add\n    --region <region> --zone <zone> --ip <ip or hostname> --port <port>\n    [--replication-ip <r_ip or r_hostname>] [--replication-port <r_port>]\n    --device <device_name> --weight <weight> [--meta <meta>]\n    Adds devices; they get partitions at the next rebalance."
        ),
        "search" => format!(
            "{p} search <search-value>\nor\n{p} search\n{SELECTOR_OPTIONS}\n    Shows the matching devices (--json for a JSON list)."
        ),
        "list_parts" => format!(
            "{p} list_parts <search-value> [<search-value>] ..\nor\n{p} list_parts\n{SELECTOR_OPTIONS}\n    Lists the partitions with a replica on the matching devices, most matches first."
        ),
        "set_weight" => format!(
            "{p} set_weight <search-value> <new_weight>\n    [<search-value> <new_weight>] ... [--yes]\nor\n{p} set_weight\n{SELECTOR_OPTIONS} <new_weight> [--yes]\n    Sets the weight of the matching devices; takes effect at the next rebalance."
        ),
        "set_region" => format!(
            "{p} set_region <search-value> <region>\n    [<search-value> <region>] ... [--yes]\nor\n{p} set_region\n{SELECTOR_OPTIONS} <new region> [--yes]\n    Moves the matching devices to another region; takes effect at the next rebalance."
        ),
        "set_zone" => format!(
            "{p} set_zone <search-value> <zone>\n    [<search-value> <zone>] ... [--yes]\nor\n{p} set_zone\n{SELECTOR_OPTIONS} <new zone> [--yes]\n    Moves the matching devices to another zone; takes effect at the next rebalance."
        ),
        "set_info" => format!(
            "{p} set_info\n    <search-value> <ip>:<port>[R<r_ip>:<r_port>]/<device_name>_<meta>\n    [<search-value> <ip>:<port>[R<r_ip>:<r_port>]/<device_name>_<meta>] ... [--yes]\nor\n{p} set_info\n{SELECTOR_OPTIONS}\n    --change-ip <ip or hostname> --change-port <port>\n    --change-replication-ip <r_ip or r_hostname> --change-replication-port <r_port>\n    --change-device <device_name> --change-meta <meta> [--yes]\n    Changes address, device name or meta of the matching devices; every part of the\n    change value is optional (set_info d74 _\"snet: 5.6.7.8\" only changes the meta).\n    Use write_ring afterwards to publish the change."
        ),
        "remove" => format!(
            "{p} remove <search-value> [search-value ...] [--yes]\nor\n{p} remove\n{SELECTOR_OPTIONS} [--yes]\n    Marks the matching devices for removal at the next rebalance (drain a device by\n    setting its weight to 0 first unless it failed)."
        ),
        "rebalance" => format!(
            "{p} rebalance [options]\n    Reassigns partitions that may move (see min_part_hours) to balance the ring.\n    -f/--force: save even if less than 1% changed; -s/--seed <seed>; -d/--debug;\n    --format-version {{1,2}}; --dry-run: print the plan and write nothing; --json."
        ),
        "dispersion" => format!(
            "{p} dispersion <search_filter> [options]\n    Reports how well replicas are spread over regions, zones, servers and devices.\n    --recalculate rebuilds the cached report and saves; -v/--verbose shows every tier;\n    <search_filter> is a regular expression matched at the start of tier names\n    (e.g. \"r\\d+z\\d+$\" for zones only); --json for a JSON document."
        ),
        "validate" => format!("{p} validate\n    Checks the builder's internal consistency (--json for a JSON result)."),
        "write_ring" => format!(
            "{p} write_ring [--format-version {{1,2}}] [--dev-id-bytes {{2,4}}]\n    Writes the ring file from the builder (a rebalance does this too)."
        ),
        "write_builder" => "ringsmith ring <ring_file> write_builder [min_part_hours]\n    Rebuilds a builder from a ring file; lossy, so keep your builder backups.".to_string(),
        "version" => "ringsmith ring <ring_file> version\n    Shows the ring file's serialization and build versions.".to_string(),
        "pretend_min_part_hours_passed" => format!(
            "{p} pretend_min_part_hours_passed\n    Lets every partition move at the next rebalance. DANGEROUS: deploying rings before\n    replication caught up can make data unavailable."
        ),
        "set_min_part_hours" => format!("{p} set_min_part_hours <hours>\n    Sets how many hours must pass before a partition moves again."),
        "set_replicas" => format!(
            "{p} set_replicas <replicas>\n    Sets the replica count (fractional counts allowed); takes effect at the next rebalance."
        ),
        "set_overload" => format!(
            "{p} set_overload <overload>[%]\n    Sets the overload factor (0.1 or 10%); takes effect at the next rebalance."
        ),
        "prepare_increase_partition_power" => format!(
            "{p} prepare_increase_partition_power\n    Starts a partition power increase (object rings). Relink data before increasing."
        ),
        "increase_partition_power" => format!(
            "{p} increase_partition_power\n    Doubles the partitions once data was relinked; then write_ring."
        ),
        "cancel_increase_partition_power" => format!(
            "{p} cancel_increase_partition_power\n    Cancels a prepared partition power increase; then write_ring."
        ),
        "finish_increase_partition_power" => format!(
            "{p} finish_increase_partition_power\n    Ends a partition power increase after the relinker cleaned up; then write_ring."
        ),
        _ => String::new(),
    }
}

pub const COMMANDS: &[&str] = &[
    "add",
    "cancel_increase_partition_power",
    "create",
    "dispersion",
    "finish_increase_partition_power",
    "increase_partition_power",
    "list_parts",
    "prepare_increase_partition_power",
    "pretend_min_part_hours_passed",
    "rebalance",
    "remove",
    "search",
    "set_info",
    "set_min_part_hours",
    "set_overload",
    "set_region",
    "set_replicas",
    "set_weight",
    "set_zone",
    "validate",
    "version",
    "write_builder",
    "write_ring",
];

/// What `ringsmith ring` with no arguments prints (exit 0), like swift-ring-builder.
pub fn print_full_help() {
    println!("ringsmith ring (swift-ring-builder 1.3 compatible)\n");
    println!("{}\n", command_usage("default"));
    for cmd in COMMANDS {
        println!("{}\n", command_usage(cmd));
    }
    println!("{SEARCH_VALUE}\n");
    let mut line = String::from("Quick list:");
    for cmd in COMMANDS {
        if line.len() + 1 + cmd.len() > 79 {
            println!("{line}");
            line = String::from("           ");
        }
        line.push(' ');
        line.push_str(cmd);
    }
    println!("{line}");
    println!(
        "Exit codes: 0 = operation successful\n            1 = operation completed with warnings\n            2 = error"
    );
}
