//! Registry data as operators get it: the npm packages
//! @ip-location-db/asn and @ip-location-db/asn-country (IP-range CSVs),
//! fetched by lab/flows/fetch-ip-location-db (npm), flattened into the
//! prefix table. Only looked up: no traffic goes anywhere.

use std::path::Path;
use std::process::Command;
use v6scope_flow::enrich::PrefixTable;

#[test]
fn ip_location_db_ranges_label_addresses_with_as_and_country() {
    let dir = std::env::temp_dir().join("v6scope-ip-location-db");
    let fetch = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab/flows/fetch-ip-location-db");
    let status = Command::new(&fetch)
        .arg(&dir)
        .status()
        .expect("running lab/flows/fetch-ip-location-db");
    assert!(
        status.success(),
        "lab/flows/fetch-ip-location-db failed (needs npm and the npm registry)"
    );
    let mut table = PrefixTable::default();
    for file in [
        "asn-ipv4.csv",
        "asn-ipv6.csv",
        "asn-country-ipv4.csv",
        "asn-country-ipv6.csv",
    ] {
        let n = table.load(&dir.join(file)).unwrap_or_else(|e| panic!("{e}"));
        assert!(n > 10_000, "{file}: only {n} prefixes");
    }
    // Cloudflare's 1.0.0.0/24 and 2606:4700::/44 are long-standing, stable entries.
    let label = table.label("1.0.0.1".parse().unwrap());
    assert_eq!((label.asn, label.organisation), (13335, "Cloudflare, Inc."));
    assert_eq!(label.region.len(), 2, "a country code: {label:?}");
    let label = table.label("2606:4700::1111".parse().unwrap());
    assert_eq!(label.asn, 13335);
    // Documentation space is in no registry.
    assert_eq!(table.label("2001:db8::1".parse().unwrap()).asn, 0);

    // The MMDB form (iptoasn-country): flattened into the table at load.
    let mut mmdb = PrefixTable::default();
    let n = mmdb
        .load(&dir.join("iptoasn-country.mmdb"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(n > 10_000, "only {n} networks");
    assert_eq!(mmdb.label("1.0.0.1".parse().unwrap()).region.len(), 2);
    assert_eq!(mmdb.label("2606:4700::1111".parse().unwrap()).region.len(), 2);
}
