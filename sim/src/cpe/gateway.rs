//! A realistic TR-181 (Device:2) home-gateway tree.
//!
//! Names, types, access and notification metadata follow
//! `tr-181-2-19-1-cwmp-full.xml`; the values are plausible for a small
//! dual-band router with four LAN ports and derived deterministically from
//! the identity and a seed, so every simulated device differs but the same
//! inputs always give the same tree.

use super::tree::{Dynamic, ParamMeta as M, ParamTree, TableSpec, TemplateItem as T, XsdType};
use super::SplitMix64;

const STR: XsdType = XsdType::String;
const INT: XsdType = XsdType::Int;
const UINT: XsdType = XsdType::UnsignedInt;
const ULONG: XsdType = XsdType::UnsignedLong;
const BOOL: XsdType = XsdType::Boolean;
const TIME: XsdType = XsdType::DateTime;

/// The TR-181 version the simulated gateway reports.
pub const ROOT_DATA_MODEL_VERSION: &str = "2.19";

const IF_STATUS: &[&str] = &[
    "Up",
    "Down",
    "Unknown",
    "Dormant",
    "NotPresent",
    "LowerLayerDown",
    "Error",
];
const EN_STATUS: &[&str] = &["Disabled", "Enabled", "Error_Misconfigured", "Error"];
const PROTOCOLS: &[&str] = &["TCP", "UDP"];

/// Identity of a simulated device; also what a factory reset regenerates
/// the tree from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    pub manufacturer: String,
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
    pub seed: u64,
}

fn mac(oui: &str, tail: u32) -> String {
    let o = oui.as_bytes();
    let b = |i: usize| -> String { String::from_utf8_lossy(&o[i..i + 2]).to_ascii_uppercase() };
    let (o1, o2, o3) = if o.len() >= 6 {
        (b(0), b(2), b(4))
    } else {
        ("02".into(), "00".into(), "00".into())
    };
    format!(
        "{o1}:{o2}:{o3}:{:02X}:{:02X}:{:02X}",
        (tail >> 16) & 0xff,
        (tail >> 8) & 0xff,
        tail & 0xff
    )
}

fn stats_template(rng: &mut SplitMix64, scale: u64) -> Vec<T> {
    let mut rate = |m: u64| (1 + rng.next() % m.max(1)) as u32;
    let bytes_tx = rate(scale) * 100;
    let bytes_rx = rate(scale) * 400;
    let pkts_tx = rate(scale);
    let pkts_rx = rate(scale) * 3;
    let errs = rate(5) as u64 - 1;
    vec![
        T::Param("BytesSent", M::counter(ULONG, 0, bytes_tx), "0"),
        T::Param("BytesReceived", M::counter(ULONG, 0, bytes_rx), "0"),
        T::Param("PacketsSent", M::counter(ULONG, 0, pkts_tx), "0"),
        T::Param("PacketsReceived", M::counter(ULONG, 0, pkts_rx), "0"),
        T::Param("ErrorsSent", M::counter(UINT, 0, 0), "0"),
        T::Param("ErrorsReceived", M::counter(UINT, errs, 0), "0"),
    ]
}

impl ParamTree {
    /// Builds a TR-181 home-gateway tree (a few hundred parameters).
    ///
    /// `oui` is six upper-case hex digits. Management-server settings that
    /// depend on the deployment (URL, credentials, ConnectionRequestURL)
    /// start empty; the simulator fills them in afterwards.
    pub fn tr181_gateway(serial: &str, oui: &str, product_class: &str, seed: u64) -> ParamTree {
        let mut rng = SplitMix64::new(seed ^ 0x6b65_656c_736f_6e00);
        let mut t = ParamTree::new("Device");
        let p = |t: &mut ParamTree, path: &str, m: M, v: &str| {
            t.add_param(path, m, v);
        };
        let hw = format!(
            "HW-{}{}",
            ["A", "B", "C"][(rng.next() % 3) as usize],
            1 + rng.next() % 3
        );
        let sw = format!("3.{}.{}", 1 + rng.next() % 4, rng.next() % 10);
        let mac_tail = (rng.next() & 0x00ff_fff0) as u32;
        let wan_ip = format!(
            "100.{}.{}.{}",
            64 + rng.next() % 64,
            rng.next() % 256,
            1 + rng.next() % 254
        );
        let lan_net = 1 + rng.next() % 3; // 192.168.{1,2,3}.0/24

        p(
            &mut t,
            "Device.RootDataModelVersion",
            M::ro(STR).forced_inform(),
            ROOT_DATA_MODEL_VERSION,
        );
        p(
            &mut t,
            "Device.InterfaceStackNumberOfEntries",
            M::ro(UINT),
            "0",
        );

        // ---------------------------------------------------------------- DeviceInfo
        let di = "Device.DeviceInfo.";
        let di_p =
            |t: &mut ParamTree, n: &str, m: M, v: &str| t.add_param(&format!("{di}{n}"), m, v);
        di_p(&mut t, "DeviceCategory", M::ro(STR).list(), "HGW");
        di_p(
            &mut t,
            "Manufacturer",
            M::ro(STR).max_len(64),
            "Keelson Simulated Networks",
        );
        di_p(&mut t, "ManufacturerOUI", M::ro(STR).max_len(6), oui);
        di_p(&mut t, "ModelName", M::ro(STR).max_len(64), product_class);
        di_p(
            &mut t,
            "ModelNumber",
            M::ro(STR).max_len(64),
            &format!("{product_class}-{}", &hw[3..]),
        );
        di_p(
            &mut t,
            "Description",
            M::ro(STR).max_len(256),
            "Keelson simulated TR-181 home gateway",
        );
        di_p(
            &mut t,
            "ProductClass",
            M::ro(STR).max_len(64),
            product_class,
        );
        di_p(&mut t, "SerialNumber", M::ro(STR).max_len(64), serial);
        di_p(
            &mut t,
            "HardwareVersion",
            M::ro(STR).max_len(64).forced_inform(),
            &hw,
        );
        di_p(
            &mut t,
            "SoftwareVersion",
            M::ro(STR).max_len(64).forced_inform().force_enabled(),
            &sw,
        );
        di_p(&mut t, "AdditionalHardwareVersion", M::ro(STR).list(), "");
        di_p(
            &mut t,
            "AdditionalSoftwareVersion",
            M::ro(STR).list(),
            &format!("bootloader-1.{}", rng.next() % 9),
        );
        di_p(
            &mut t,
            "ProvisioningCode",
            M::rw(STR).max_len(64).forced_inform().force_enabled(),
            "",
        );
        di_p(
            &mut t,
            "UpTime",
            M::ro(UINT).can_deny().dynamic(Dynamic::UpTime),
            "0",
        );
        di_p(&mut t, "FirstUseDate", M::ro(TIME), "0001-01-01T00:00:00Z");
        di_p(
            &mut t,
            "HostName",
            M::rw(STR).max_len(255),
            &format!("gw-{}", serial.to_ascii_lowercase()),
        );
        di_p(&mut t, "VendorConfigFileNumberOfEntries", M::ro(UINT), "0");
        di_p(&mut t, "VendorLogFileNumberOfEntries", M::ro(UINT), "0");
        di_p(&mut t, "MemoryStatus.Total", M::ro(UINT), "524288");
        di_p(
            &mut t,
            "MemoryStatus.Free",
            M::ro(UINT).can_deny(),
            &(200_000 + rng.next() % 100_000).to_string(),
        );
        di_p(
            &mut t,
            "ProcessStatus.CPUUsage",
            M::ro(UINT).can_deny().range(0, 100),
            &(rng.next() % 40).to_string(),
        );
        di_p(
            &mut t,
            "ProcessStatus.ProcessNumberOfEntries",
            M::ro(UINT),
            "0",
        );
        t.add_table(
            "Device.DeviceInfo.VendorConfigFile.",
            TableSpec::new(
                false,
                vec![
                    T::Param("Alias", M::rw(STR).max_len(64), ""),
                    T::Param("Name", M::ro(STR).max_len(64), ""),
                    T::Param("Version", M::ro(STR).max_len(16), ""),
                    T::Param("Date", M::ro(TIME), "0001-01-01T00:00:00Z"),
                    T::Param("Description", M::ro(STR).max_len(256), ""),
                    T::Param("UseForBackupRestore", M::ro(BOOL), "false"),
                ],
            ),
        );
        t.create_instance("Device.DeviceInfo.VendorConfigFile.");
        t.set_local("Device.DeviceInfo.VendorConfigFile.1.Name", "config.xml");
        t.set_local("Device.DeviceInfo.VendorConfigFile.1.Version", "1");
        t.set_local(
            "Device.DeviceInfo.VendorConfigFile.1.Description",
            "Running configuration",
        );
        t.set_local(
            "Device.DeviceInfo.VendorConfigFile.1.UseForBackupRestore",
            "true",
        );
        t.add_table(
            "Device.DeviceInfo.VendorLogFile.",
            TableSpec::new(
                false,
                vec![
                    T::Param("Alias", M::rw(STR).max_len(64), ""),
                    T::Param("Name", M::ro(STR).max_len(64), ""),
                    T::Param("MaximumSize", M::ro(UINT), "65536"),
                    T::Param("Persistent", M::ro(BOOL), "false"),
                ],
            ),
        );
        for name in ["syslog", "cwmp.log"] {
            let n = t
                .create_instance("Device.DeviceInfo.VendorLogFile.")
                .unwrap_or(1);
            t.set_local(&format!("Device.DeviceInfo.VendorLogFile.{n}.Name"), name);
        }

        // ---------------------------------------------------------------- ManagementServer
        let ms = "Device.ManagementServer.";
        let ms_p =
            |t: &mut ParamTree, n: &str, m: M, v: &str| t.add_param(&format!("{ms}{n}"), m, v);
        ms_p(&mut t, "EnableCWMP", M::rw(BOOL), "true");
        ms_p(&mut t, "URL", M::rw(STR).max_len(256), "");
        ms_p(&mut t, "Username", M::rw(STR).max_len(256), "");
        ms_p(&mut t, "Password", M::rw(STR).max_len(256).hidden(), "");
        ms_p(
            &mut t,
            "ScheduleReboot",
            M::rw(TIME),
            "0001-01-01T00:00:00Z",
        );
        ms_p(
            &mut t,
            "DelayReboot",
            M::rw(INT).range(-1, i32::MAX as i64),
            "-1",
        );
        ms_p(&mut t, "PeriodicInformEnable", M::rw(BOOL), "true");
        ms_p(
            &mut t,
            "PeriodicInformInterval",
            M::rw(UINT).range(1, u32::MAX as i64),
            "86400",
        );
        ms_p(
            &mut t,
            "PeriodicInformTime",
            M::rw(TIME),
            "0001-01-01T00:00:00Z",
        );
        ms_p(
            &mut t,
            "ParameterKey",
            M::ro(STR).max_len(32).can_deny().forced_inform(),
            "",
        );
        ms_p(
            &mut t,
            "ConnectionRequestURL",
            M::ro(STR).max_len(256).force_default().forced_inform(),
            "",
        );
        ms_p(
            &mut t,
            "ConnectionRequestUsername",
            M::rw(STR).max_len(256),
            "",
        );
        ms_p(
            &mut t,
            "ConnectionRequestPassword",
            M::rw(STR).max_len(256).hidden(),
            "",
        );
        ms_p(&mut t, "UpgradesManaged", M::rw(BOOL), "false");
        ms_p(
            &mut t,
            "DefaultActiveNotificationThrottle",
            M::rw(UINT),
            "0",
        );
        ms_p(
            &mut t,
            "CWMPRetryMinimumWaitInterval",
            M::rw(UINT).range(1, 65535),
            "5",
        );
        ms_p(
            &mut t,
            "CWMPRetryIntervalMultiplier",
            M::rw(UINT).range(1000, 65535),
            "2000",
        );
        ms_p(&mut t, "HTTPConnectionRequestEnable", M::rw(BOOL), "true");
        ms_p(
            &mut t,
            "UDPConnectionRequestAddress",
            M::ro(STR).max_len(256),
            "",
        );
        ms_p(&mut t, "STUNEnable", M::rw(BOOL), "false");
        ms_p(&mut t, "STUNServerAddress", M::rw(STR).max_len(256), "");
        ms_p(
            &mut t,
            "STUNServerPort",
            M::rw(UINT).range(0, 65535),
            "3478",
        );
        ms_p(&mut t, "STUNUsername", M::rw(STR).max_len(256), "");
        ms_p(&mut t, "STUNPassword", M::rw(STR).max_len(256).hidden(), "");
        ms_p(
            &mut t,
            "STUNMaximumKeepAlivePeriod",
            M::rw(INT).range(-1, i32::MAX as i64),
            "-1",
        );
        ms_p(&mut t, "STUNMinimumKeepAlivePeriod", M::rw(UINT), "30");
        ms_p(&mut t, "NATDetected", M::ro(BOOL), "false");
        ms_p(&mut t, "ManageableDeviceNumberOfEntries", M::ro(UINT), "0");
        ms_p(
            &mut t,
            "ManageableDeviceNotificationLimit",
            M::rw(UINT),
            "0",
        );
        ms_p(
            &mut t,
            "SupportedConnReqMethods",
            M::ro(STR).list(),
            "HTTP,STUN",
        );
        ms_p(&mut t, "HTTPCompressionSupported", M::ro(STR).list(), "");
        ms_p(
            &mut t,
            "HTTPCompression",
            M::rw(STR).enumeration(&["Disabled", "GZIP", "Compress", "Deflate"]),
            "Disabled",
        );
        ms_p(
            &mut t,
            "LightweightNotificationProtocolsSupported",
            M::ro(STR).list(),
            "",
        );
        ms_p(&mut t, "InstanceWildcardsSupported", M::ro(BOOL), "false");
        ms_p(&mut t, "InformParameterNumberOfEntries", M::ro(UINT), "0");
        ms_p(&mut t, "HeartbeatPolicy.Enable", M::rw(BOOL), "false");
        ms_p(
            &mut t,
            "HeartbeatPolicy.ReportingInterval",
            M::rw(UINT).range(30, u32::MAX as i64),
            "86400",
        );
        ms_p(
            &mut t,
            "HeartbeatPolicy.InitiationTime",
            M::rw(TIME),
            "0001-01-01T00:00:00Z",
        );

        // ---------------------------------------------------------------- Time
        let tm = |t: &mut ParamTree, n: &str, m: M, v: &str| {
            t.add_param(&format!("Device.Time.{n}"), m, v)
        };
        tm(&mut t, "Enable", M::rw(BOOL), "true");
        tm(
            &mut t,
            "Status",
            M::ro(STR).enumeration(&[
                "Disabled",
                "Unsynchronized",
                "Synchronized",
                "Error_FailedToSynchronize",
                "Error",
            ]),
            "Synchronized",
        );
        tm(
            &mut t,
            "CurrentLocalTime",
            M::ro(TIME).can_deny().dynamic(Dynamic::LocalTime),
            "",
        );
        tm(
            &mut t,
            "LocalTimeZone",
            M::rw(STR).max_len(256),
            "CET-1CEST,M3.5.0,M10.5.0/3",
        );
        tm(&mut t, "ClientNumberOfEntries", M::ro(UINT), "0");
        tm(&mut t, "ServerNumberOfEntries", M::ro(UINT), "0");

        // ---------------------------------------------------------------- Ethernet
        p(&mut t, "Device.Ethernet.WoLSupported", M::ro(BOOL), "false");
        p(
            &mut t,
            "Device.Ethernet.FlowControlSupported",
            M::ro(BOOL),
            "true",
        );
        p(
            &mut t,
            "Device.Ethernet.InterfaceNumberOfEntries",
            M::ro(UINT),
            "0",
        );
        let eth_template = vec![
            T::Param("Enable", M::rw(BOOL), "true"),
            T::Param("Status", M::ro(STR).enumeration(IF_STATUS), "Down"),
            T::Param("Alias", M::rw(STR).max_len(64), ""),
            T::Param("Name", M::ro(STR).max_len(64), ""),
            T::Param("LastChange", M::ro(UINT).can_deny(), "0"),
            T::Param("LowerLayers", M::rw(STR).list(), ""),
            T::Param("Upstream", M::ro(BOOL), "false"),
            T::Param("MACAddress", M::ro(STR), ""),
            T::Param("MaxBitRate", M::rw(INT).range(-1, i32::MAX as i64), "-1"),
            T::Param("CurrentBitRate", M::ro(UINT).can_deny(), "0"),
            T::Param(
                "DuplexMode",
                M::rw(STR).enumeration(&["Half", "Full", "Auto"]),
                "Auto",
            ),
            T::Object("Stats", stats_template(&mut rng, 50)),
        ];
        t.add_table(
            "Device.Ethernet.Interface.",
            TableSpec::new(false, eth_template),
        );
        for i in 1..=5u32 {
            let n = t.create_instance("Device.Ethernet.Interface.").unwrap_or(i);
            let base = format!("Device.Ethernet.Interface.{n}.");
            let wan = i == 5;
            let up = wan || rng.next() % 3 >= 1;
            t.set_local(
                &format!("{base}Name"),
                if wan {
                    "eth4".to_string()
                } else {
                    format!("eth{}", i - 1)
                },
            );
            t.set_local(&format!("{base}Status"), if up { "Up" } else { "Down" });
            t.set_local(
                &format!("{base}Upstream"),
                if wan { "true" } else { "false" },
            );
            t.set_local(&format!("{base}MACAddress"), mac(oui, mac_tail + i));
            t.set_local(
                &format!("{base}CurrentBitRate"),
                if up { "1000" } else { "0" },
            );
        }

        // ---------------------------------------------------------------- IP
        p(&mut t, "Device.IP.IPv4Capable", M::ro(BOOL), "true");
        p(&mut t, "Device.IP.IPv4Enable", M::rw(BOOL), "true");
        p(
            &mut t,
            "Device.IP.IPv4Status",
            M::ro(STR).enumeration(&["Disabled", "Enabled", "Error"]),
            "Enabled",
        );
        p(&mut t, "Device.IP.IPv6Capable", M::ro(BOOL), "true");
        p(&mut t, "Device.IP.IPv6Enable", M::rw(BOOL), "false");
        p(
            &mut t,
            "Device.IP.IPv6Status",
            M::ro(STR).enumeration(&["Disabled", "Enabled", "Error"]),
            "Disabled",
        );
        p(
            &mut t,
            "Device.IP.InterfaceNumberOfEntries",
            M::ro(UINT),
            "0",
        );
        let ipv4_template = vec![
            T::Param("Enable", M::rw(BOOL), "false"),
            T::Param("Status", M::ro(STR).enumeration(EN_STATUS), "Disabled"),
            T::Param("Alias", M::rw(STR).max_len(64), ""),
            T::Param("IPAddress", M::rw(STR).max_len(15), ""),
            T::Param("SubnetMask", M::rw(STR).max_len(15), ""),
            T::Param(
                "AddressingType",
                M::ro(STR).enumeration(&["DHCP", "IKEv2", "AutoIP", "IPCP", "Static", "3GPP-NAS"]),
                "Static",
            ),
        ];
        let ip_if_template = vec![
            T::Param("Enable", M::rw(BOOL), "false"),
            T::Param("IPv4Enable", M::rw(BOOL), "true"),
            T::Param("IPv6Enable", M::rw(BOOL), "false"),
            T::Param("Status", M::ro(STR).enumeration(IF_STATUS), "Down"),
            T::Param("Alias", M::rw(STR).max_len(64), ""),
            T::Param("Name", M::ro(STR).max_len(64), ""),
            T::Param("LastChange", M::ro(UINT).can_deny(), "0"),
            T::Param("LowerLayers", M::rw(STR).list(), ""),
            T::Param("Reset", M::rw(BOOL), "false"),
            T::Param("MaxMTUSize", M::rw(UINT).range(64, 65535), "1500"),
            T::Param(
                "Type",
                M::ro(STR).enumeration(&["Normal", "Loopback", "Tunnel", "Tunneled"]),
                "Normal",
            ),
            T::Param("Loopback", M::rw(BOOL), "false"),
            T::Param("IPv4AddressNumberOfEntries", M::ro(UINT), "0"),
            T::Table("IPv4Address", TableSpec::new(true, ipv4_template)),
            T::Object("Stats", stats_template(&mut rng, 200)),
        ];
        t.add_table("Device.IP.Interface.", TableSpec::new(true, ip_if_template));
        for (name, lower, ip, mask, addressing) in [
            ("br-lan", "Device.Ethernet.Interface.1,Device.Ethernet.Interface.2,Device.Ethernet.Interface.3,Device.Ethernet.Interface.4", format!("192.168.{lan_net}.1"), "255.255.255.0", "Static"),
            ("wan", "Device.Ethernet.Interface.5", wan_ip.clone(), "255.192.0.0", "DHCP"),
        ] {
            let n = t.create_instance("Device.IP.Interface.").unwrap_or(1);
            let base = format!("Device.IP.Interface.{n}.");
            t.set_local(&format!("{base}Enable"), "true");
            t.set_local(&format!("{base}Status"), "Up");
            t.set_local(&format!("{base}Name"), name);
            t.set_local(&format!("{base}LowerLayers"), lower);
            let a = t.create_instance(&format!("{base}IPv4Address.")).unwrap_or(1);
            let ab = format!("{base}IPv4Address.{a}.");
            t.set_local(&format!("{ab}Enable"), "true");
            t.set_local(&format!("{ab}Status"), "Enabled");
            t.set_local(&format!("{ab}IPAddress"), ip);
            t.set_local(&format!("{ab}SubnetMask"), mask);
            t.set_local(&format!("{ab}AddressingType"), addressing);
        }

        // ---------------------------------------------------------------- WiFi
        p(&mut t, "Device.WiFi.RadioNumberOfEntries", M::ro(UINT), "0");
        p(&mut t, "Device.WiFi.SSIDNumberOfEntries", M::ro(UINT), "0");
        p(
            &mut t,
            "Device.WiFi.AccessPointNumberOfEntries",
            M::ro(UINT),
            "0",
        );
        let radio_template = vec![
            T::Param("Enable", M::rw(BOOL), "true"),
            T::Param("Status", M::ro(STR).enumeration(IF_STATUS), "Up"),
            T::Param("Alias", M::rw(STR).max_len(64), ""),
            T::Param("Name", M::ro(STR).max_len(64), ""),
            T::Param("LastChange", M::ro(UINT).can_deny(), "0"),
            T::Param("LowerLayers", M::rw(STR).list(), ""),
            T::Param("Upstream", M::ro(BOOL), "false"),
            T::Param("MaxBitRate", M::ro(UINT), "0"),
            T::Param("SupportedFrequencyBands", M::ro(STR).list(), ""),
            T::Param(
                "OperatingFrequencyBand",
                M::rw(STR).enumeration(&["2.4GHz", "5GHz", "6GHz"]),
                "2.4GHz",
            ),
            T::Param("SupportedStandards", M::ro(STR).list(), ""),
            T::Param(
                "OperatingStandards",
                M::rw(STR)
                    .list()
                    .enumeration(&["a", "b", "g", "n", "ac", "ax", "be"]),
                "",
            ),
            T::Param("PossibleChannels", M::ro(STR).list(), ""),
            T::Param("ChannelsInUse", M::ro(STR).list().can_deny(), ""),
            T::Param("Channel", M::rw(UINT).range(1, 255), "1"),
            T::Param("AutoChannelSupported", M::ro(BOOL), "true"),
            T::Param("AutoChannelEnable", M::rw(BOOL), "true"),
            T::Param("AutoChannelRefreshPeriod", M::rw(UINT), "0"),
            T::Param(
                "OperatingChannelBandwidth",
                M::rw(STR).enumeration(&["20MHz", "40MHz", "80MHz", "160MHz", "Auto"]),
                "Auto",
            ),
            T::Param("TransmitPowerSupported", M::ro(STR).list(), "25,50,75,100"),
            T::Param("TransmitPower", M::rw(INT).range(-1, 100), "100"),
            T::Param("RegulatoryDomain", M::rw(STR).max_len(3), "DE "),
            T::Param("BeaconPeriod", M::rw(UINT), "100"),
            T::Param("DTIMPeriod", M::rw(UINT), "2"),
        ];
        t.add_table("Device.WiFi.Radio.", TableSpec::new(false, radio_template));
        let ssid_template = vec![
            T::Param("Enable", M::rw(BOOL), "false"),
            T::Param("Status", M::ro(STR).enumeration(IF_STATUS), "Down"),
            T::Param("Alias", M::rw(STR).max_len(64), ""),
            T::Param("Name", M::ro(STR).max_len(64), ""),
            T::Param("LastChange", M::ro(UINT).can_deny(), "0"),
            T::Param("LowerLayers", M::rw(STR).list(), ""),
            T::Param("BSSID", M::ro(STR), ""),
            T::Param("MACAddress", M::ro(STR), ""),
            T::Param("SSID", M::rw(STR).max_len(32), ""),
            T::Object("Stats", stats_template(&mut rng, 100)),
        ];
        t.add_table("Device.WiFi.SSID.", TableSpec::new(true, ssid_template));
        let ap_template = vec![
            T::Param("Enable", M::rw(BOOL), "false"),
            T::Param(
                "Status",
                M::ro(STR).enumeration(&["Disabled", "Enabled", "Error_Misconfigured", "Error"]),
                "Disabled",
            ),
            T::Param("Alias", M::rw(STR).max_len(64), ""),
            T::Param("SSIDReference", M::rw(STR).max_len(256), ""),
            T::Param("SSIDAdvertisementEnabled", M::rw(BOOL), "true"),
            T::Param("WMMCapability", M::ro(BOOL), "true"),
            T::Param("UAPSDCapability", M::ro(BOOL), "true"),
            T::Param("WMMEnable", M::rw(BOOL), "true"),
            T::Param("UAPSDEnable", M::rw(BOOL), "false"),
            T::Param("AssociatedDeviceNumberOfEntries", M::ro(UINT), "0"),
            T::Param("IsolationEnable", M::rw(BOOL), "false"),
            T::Param("MaxAllowedAssociations", M::rw(UINT), "32"),
            T::Object(
                "Security",
                vec![
                    T::Param(
                        "ModesSupported",
                        M::ro(STR).list(),
                        "None,WPA2-Personal,WPA3-Personal,WPA3-Personal-Transition",
                    ),
                    T::Param(
                        "ModeEnabled",
                        M::rw(STR).enumeration(&[
                            "None",
                            "WPA2-Personal",
                            "WPA3-Personal",
                            "WPA3-Personal-Transition",
                        ]),
                        "WPA2-Personal",
                    ),
                    T::Param("KeyPassphrase", M::rw(STR).max_len(63).hidden(), ""),
                    T::Param("RekeyingInterval", M::rw(UINT), "3600"),
                ],
            ),
        ];
        t.add_table(
            "Device.WiFi.AccessPoint.",
            TableSpec::new(true, ap_template),
        );
        let ssid_suffix = &serial[serial.len().saturating_sub(4)..];
        for (i, (band, stds, chans, chan)) in [
            (
                "2.4GHz",
                "b,g,n,ax",
                "1,2,3,4,5,6,7,8,9,10,11,12,13",
                1 + 5 * (rng.next() % 3),
            ),
            (
                "5GHz",
                "a,n,ac,ax",
                "36,40,44,48,52,56,60,64,100,104,108,112,116",
                [36, 44, 100][(rng.next() % 3) as usize],
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let i = i as u32 + 1;
            let r = t.create_instance("Device.WiFi.Radio.").unwrap_or(i);
            let rb = format!("Device.WiFi.Radio.{r}.");
            t.set_local(&format!("{rb}Name"), format!("wifi{}", i - 1));
            t.set_local(&format!("{rb}SupportedFrequencyBands"), band);
            t.set_local(&format!("{rb}OperatingFrequencyBand"), band);
            t.set_local(&format!("{rb}SupportedStandards"), stds);
            t.set_local(&format!("{rb}OperatingStandards"), stds);
            t.set_local(&format!("{rb}PossibleChannels"), chans);
            t.set_local(&format!("{rb}ChannelsInUse"), chan.to_string());
            t.set_local(&format!("{rb}Channel"), chan.to_string());
            t.set_local(
                &format!("{rb}MaxBitRate"),
                if i == 1 { "574" } else { "2402" },
            );
            let s = t.create_instance("Device.WiFi.SSID.").unwrap_or(i);
            let sb = format!("Device.WiFi.SSID.{s}.");
            t.set_local(&format!("{sb}Enable"), "true");
            t.set_local(&format!("{sb}Status"), "Up");
            t.set_local(&format!("{sb}Name"), format!("wl{}", i - 1));
            t.set_local(
                &format!("{sb}LowerLayers"),
                format!("Device.WiFi.Radio.{r}"),
            );
            t.set_local(&format!("{sb}BSSID"), mac(oui, mac_tail + 8 + i));
            t.set_local(&format!("{sb}MACAddress"), mac(oui, mac_tail + 8 + i));
            t.set_local(
                &format!("{sb}SSID"),
                if i == 1 {
                    format!("Keelson-{ssid_suffix}")
                } else {
                    format!("Keelson-{ssid_suffix}-5G")
                },
            );
            let a = t.create_instance("Device.WiFi.AccessPoint.").unwrap_or(i);
            let ab = format!("Device.WiFi.AccessPoint.{a}.");
            t.set_local(&format!("{ab}Enable"), "true");
            t.set_local(&format!("{ab}Status"), "Enabled");
            t.set_local(
                &format!("{ab}SSIDReference"),
                format!("Device.WiFi.SSID.{s}"),
            );
            t.set_local(
                &format!("{ab}Security.KeyPassphrase"),
                format!("{:016x}", rng.next()),
            );
        }

        // ---------------------------------------------------------------- Hosts
        p(&mut t, "Device.Hosts.HostNumberOfEntries", M::ro(UINT), "0");
        let host_template = vec![
            T::Param("PhysAddress", M::ro(STR).max_len(64), ""),
            T::Param("IPAddress", M::ro(STR), ""),
            T::Param("DHCPClient", M::ro(STR).list(), ""),
            T::Param("AssociatedDevice", M::ro(STR).max_len(256), ""),
            T::Param("Layer1Interface", M::ro(STR).max_len(256), ""),
            T::Param("Layer3Interface", M::ro(STR).max_len(256), ""),
            T::Param(
                "InterfaceType",
                M::ro(STR).enumeration(&[
                    "Ethernet", "G.hn", "HPNA", "HomePlug", "MoCA", "UPA", "Wi-Fi", "Other",
                ]),
                "Ethernet",
            ),
            T::Param("HostName", M::ro(STR).max_len(64), ""),
            T::Param("Active", M::ro(BOOL), "true"),
            T::Param("ActiveLastChange", M::ro(TIME), "0001-01-01T00:00:00Z"),
            T::Param("IPv4AddressNumberOfEntries", M::ro(UINT), "0"),
            T::Param("IPv6AddressNumberOfEntries", M::ro(UINT), "0"),
        ];
        t.add_table("Device.Hosts.Host.", TableSpec::new(false, host_template));
        const HOSTNAMES: [&str; 8] = [
            "laptop",
            "phone",
            "tv",
            "printer",
            "nas",
            "tablet",
            "console",
            "thermostat",
        ];
        let hosts = 2 + rng.next() % 5;
        for h in 0..hosts {
            let n = t.create_instance("Device.Hosts.Host.").unwrap_or(1);
            let hb = format!("Device.Hosts.Host.{n}.");
            let wifi = rng.next() & 1 == 0;
            let host_mac = format!(
                "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
                0x02 | (rng.next() as u8 & 0xfc),
                rng.next() as u8,
                rng.next() as u8,
                rng.next() as u8,
                rng.next() as u8,
                rng.next() as u8
            );
            t.set_local(&format!("{hb}PhysAddress"), host_mac);
            t.set_local(
                &format!("{hb}IPAddress"),
                format!("192.168.{lan_net}.{}", 100 + h),
            );
            t.set_local(&format!("{hb}DHCPClient"), "Device.DHCPv4.Server.Pool.1");
            t.set_local(
                &format!("{hb}Layer1Interface"),
                if wifi {
                    "Device.WiFi.SSID.1".to_string()
                } else {
                    format!("Device.Ethernet.Interface.{}", 1 + h % 4)
                },
            );
            t.set_local(&format!("{hb}Layer3Interface"), "Device.IP.Interface.1");
            t.set_local(
                &format!("{hb}InterfaceType"),
                if wifi { "Wi-Fi" } else { "Ethernet" },
            );
            t.set_local(
                &format!("{hb}HostName"),
                format!("{}-{}", HOSTNAMES[(rng.next() % 8) as usize], h + 1),
            );
        }

        // ---------------------------------------------------------------- DHCPv4
        p(
            &mut t,
            "Device.DHCPv4.ClientNumberOfEntries",
            M::ro(UINT),
            "0",
        );
        p(&mut t, "Device.DHCPv4.Server.Enable", M::rw(BOOL), "true");
        p(
            &mut t,
            "Device.DHCPv4.Server.PoolNumberOfEntries",
            M::ro(UINT),
            "0",
        );
        let pool_template = vec![
            T::Param("Enable", M::rw(BOOL), "false"),
            T::Param("Status", M::ro(STR).enumeration(EN_STATUS), "Disabled"),
            T::Param("Alias", M::rw(STR).max_len(64), ""),
            T::Param("Order", M::rw(UINT).range(1, u32::MAX as i64), "1"),
            T::Param("Interface", M::rw(STR).max_len(256), ""),
            T::Param("MinAddress", M::rw(STR).max_len(15), ""),
            T::Param("MaxAddress", M::rw(STR).max_len(15), ""),
            T::Param("ReservedAddresses", M::rw(STR).list(), ""),
            T::Param("SubnetMask", M::rw(STR).max_len(15), ""),
            T::Param("DNSServers", M::rw(STR).list(), ""),
            T::Param("DomainName", M::rw(STR).max_len(64), ""),
            T::Param("IPRouters", M::rw(STR).list(), ""),
            T::Param("LeaseTime", M::rw(INT).range(-1, i32::MAX as i64), "86400"),
            T::Param("StaticAddressNumberOfEntries", M::ro(UINT), "0"),
            T::Param("OptionNumberOfEntries", M::ro(UINT), "0"),
            T::Param("ClientNumberOfEntries", M::ro(UINT), "0"),
        ];
        t.add_table(
            "Device.DHCPv4.Server.Pool.",
            TableSpec::new(true, pool_template),
        );
        t.create_instance("Device.DHCPv4.Server.Pool.");
        for (n, v) in [
            ("Enable", "true".to_string()),
            ("Status", "Enabled".to_string()),
            ("Interface", "Device.IP.Interface.1".to_string()),
            ("MinAddress", format!("192.168.{lan_net}.100")),
            ("MaxAddress", format!("192.168.{lan_net}.249")),
            ("SubnetMask", "255.255.255.0".to_string()),
            ("DNSServers", format!("192.168.{lan_net}.1")),
            ("DomainName", "lan".to_string()),
            ("IPRouters", format!("192.168.{lan_net}.1")),
            ("ClientNumberOfEntries", hosts.to_string()),
        ] {
            t.set_local(&format!("Device.DHCPv4.Server.Pool.1.{n}"), v);
        }

        // ---------------------------------------------------------------- NAT
        p(
            &mut t,
            "Device.NAT.InterfaceSettingNumberOfEntries",
            M::ro(UINT),
            "0",
        );
        p(
            &mut t,
            "Device.NAT.PortMappingNumberOfEntries",
            M::ro(UINT),
            "0",
        );
        p(
            &mut t,
            "Device.NAT.MaxNumberOfPortMappings",
            M::ro(UINT),
            "32",
        );
        let pm_template = vec![
            T::Param("Enable", M::rw(BOOL), "false"),
            T::Param(
                "Status",
                M::ro(STR).enumeration(&[
                    "Disabled",
                    "Enabled",
                    "Inactive",
                    "Error_Misconfigured",
                    "Error",
                ]),
                "Disabled",
            ),
            T::Param(
                "Origin",
                M::ro(STR).enumeration(&["User", "System", "UPnP", "Controller"]),
                "Controller",
            ),
            T::Param("Alias", M::rw(STR).max_len(64), ""),
            T::Param("Interface", M::rw(STR).max_len(256), ""),
            T::Param("AllInterfaces", M::rw(BOOL), "false"),
            T::Param("LeaseDuration", M::rw(UINT).can_deny(), "0"),
            T::Param("RemainingLeaseTime", M::ro(UINT).can_deny(), "0"),
            T::Param("RemoteHost", M::rw(STR), ""),
            T::Param("ExternalPort", M::rw(UINT).range(0, 65535), "0"),
            T::Param("ExternalPortEndRange", M::rw(UINT).range(0, 65535), "0"),
            T::Param("InternalPort", M::rw(UINT).range(0, 65535), "0"),
            T::Param("Protocol", M::rw(STR).enumeration(PROTOCOLS), "TCP"),
            T::Param("InternalClient", M::rw(STR).max_len(256), ""),
            T::Param("Description", M::rw(STR).max_len(256), ""),
        ];
        t.add_table("Device.NAT.PortMapping.", TableSpec::new(true, pm_template));

        // ---------------------------------------------------------------- Firewall
        let fw = |t: &mut ParamTree, n: &str, m: M, v: &str| {
            t.add_param(&format!("Device.Firewall.{n}"), m, v)
        };
        fw(&mut t, "Enable", M::rw(BOOL), "true");
        fw(
            &mut t,
            "Config",
            M::rw(STR).enumeration(&["High", "Low", "Off", "Advanced", "Policy"]),
            "Low",
        );
        fw(&mut t, "AdvancedLevel", M::rw(STR), "");
        fw(
            &mut t,
            "Type",
            M::ro(STR).enumeration(&["Stateless", "Stateful"]),
            "Stateful",
        );
        fw(&mut t, "Version", M::ro(STR).max_len(16), "1.0");
        fw(&mut t, "LastChange", M::ro(TIME), "0001-01-01T00:00:00Z");
        fw(&mut t, "LevelNumberOfEntries", M::ro(UINT), "0");
        fw(&mut t, "ChainNumberOfEntries", M::ro(UINT), "0");

        // ---------------------------------------------------------------- DNS
        p(
            &mut t,
            "Device.DNS.SupportedRecordTypes",
            M::ro(STR).list(),
            "A,AAAA,SRV,PTR",
        );
        p(&mut t, "Device.DNS.Client.Enable", M::rw(BOOL), "true");
        p(
            &mut t,
            "Device.DNS.Client.Status",
            M::ro(STR).enumeration(&["Disabled", "Enabled", "Error"]),
            "Enabled",
        );
        p(
            &mut t,
            "Device.DNS.Client.ServerNumberOfEntries",
            M::ro(UINT),
            "0",
        );
        let dns_template = vec![
            T::Param("Enable", M::rw(BOOL), "false"),
            T::Param(
                "Status",
                M::ro(STR).enumeration(&["Disabled", "Enabled", "Error"]),
                "Disabled",
            ),
            T::Param("Alias", M::rw(STR).max_len(64), ""),
            T::Param("DNSServer", M::rw(STR).max_len(45), ""),
            T::Param("Interface", M::rw(STR).max_len(256), ""),
            T::Param(
                "Type",
                M::ro(STR).enumeration(&[
                    "DHCP",
                    "DHCPv4",
                    "DHCPv6",
                    "RouterAdvertisement",
                    "IPCP",
                    "3GPP-NAS",
                    "Static",
                ]),
                "Static",
            ),
        ];
        t.add_table(
            "Device.DNS.Client.Server.",
            TableSpec::new(true, dns_template),
        );
        for (server, ty) in [("100.64.0.53", "DHCPv4"), ("100.64.1.53", "DHCPv4")] {
            let n = t.create_instance("Device.DNS.Client.Server.").unwrap_or(1);
            let b = format!("Device.DNS.Client.Server.{n}.");
            t.set_local(&format!("{b}Enable"), "true");
            t.set_local(&format!("{b}Status"), "Enabled");
            t.set_local(&format!("{b}DNSServer"), server);
            t.set_local(&format!("{b}Interface"), "Device.IP.Interface.2");
            t.set_local(&format!("{b}Type"), ty);
        }

        // ---------------------------------------------------------------- SoftwareModules
        let sm = "Device.SoftwareModules.";
        p(
            &mut t,
            &format!("{sm}ExecEnvNumberOfEntries"),
            M::ro(UINT),
            "0",
        );
        p(
            &mut t,
            &format!("{sm}DeploymentUnitNumberOfEntries"),
            M::ro(UINT),
            "0",
        );
        p(
            &mut t,
            &format!("{sm}ExecutionUnitNumberOfEntries"),
            M::ro(UINT),
            "0",
        );
        let ee_template = vec![
            T::Param("Enable", M::rw(BOOL), "true"),
            T::Param(
                "Status",
                M::ro(STR).enumeration(&["Up", "Error", "Disabled"]),
                "Up",
            ),
            T::Param("Reset", M::rw(BOOL), "false"),
            T::Param("Alias", M::rw(STR).max_len(64), ""),
            T::Param("Name", M::ro(STR).max_len(256), ""),
            T::Param("Type", M::ro(STR).max_len(64), ""),
            T::Param("Vendor", M::ro(STR).max_len(128), ""),
            T::Param("Version", M::ro(STR).max_len(32), ""),
            T::Param("AllocatedDiskSpace", M::ro(INT), "-1"),
            T::Param("AvailableDiskSpace", M::ro(INT).can_deny(), "65536"),
            T::Param("AllocatedMemory", M::ro(INT), "-1"),
            T::Param("AvailableMemory", M::ro(INT).can_deny(), "32768"),
            T::Param("ActiveExecutionUnits", M::ro(STR).list().can_deny(), ""),
        ];
        t.add_table(&format!("{sm}ExecEnv."), TableSpec::new(false, ee_template));
        t.create_instance(&format!("{sm}ExecEnv."));
        t.set_local(&format!("{sm}ExecEnv.1.Name"), "Linux");
        t.set_local(&format!("{sm}ExecEnv.1.Type"), "Linux Container");
        t.set_local(&format!("{sm}ExecEnv.1.Vendor"), "Keelson");
        t.set_local(&format!("{sm}ExecEnv.1.Version"), "5.15");
        t.add_table(
            &format!("{sm}DeploymentUnit."),
            TableSpec::new(false, du_template()),
        );
        t.add_table(
            &format!("{sm}ExecutionUnit."),
            TableSpec::new(false, eu_template()),
        );
        t.shrink_to_fit();
        t
    }
}

/// Default children of `Device.SoftwareModules.DeploymentUnit.{i}.`.
fn du_template() -> Vec<T> {
    vec![
        T::Param("UUID", M::ro(STR).max_len(36), ""),
        T::Param("DUID", M::ro(STR).max_len(64), ""),
        T::Param("Alias", M::rw(STR).max_len(64), ""),
        T::Param("Name", M::ro(STR).max_len(256), ""),
        T::Param(
            "Status",
            M::ro(STR).can_deny().enumeration(&[
                "Installing",
                "Installed",
                "Updating",
                "Uninstalling",
                "Uninstalled",
            ]),
            "Installing",
        ),
        T::Param("Resolved", M::ro(BOOL), "true"),
        T::Param("URL", M::ro(STR).max_len(1024), ""),
        T::Param("Description", M::ro(STR).max_len(256), ""),
        T::Param("Vendor", M::ro(STR).max_len(128), ""),
        T::Param("Version", M::ro(STR).max_len(32), ""),
        T::Param("VendorLogList", M::ro(STR).list(), ""),
        T::Param("VendorConfigList", M::ro(STR).list(), ""),
        T::Param("ExecutionUnitList", M::ro(STR).list(), ""),
        T::Param("ExecutionEnvRef", M::ro(STR), ""),
        T::Param("Installed", M::ro(TIME), "0001-01-01T00:00:00Z"),
        T::Param("LastUpdate", M::ro(TIME), "0001-01-01T00:00:00Z"),
    ]
}

/// Default children of `Device.SoftwareModules.ExecutionUnit.{i}.`.
fn eu_template() -> Vec<T> {
    vec![
        T::Param("EUID", M::ro(STR).max_len(64), ""),
        T::Param("Alias", M::rw(STR).max_len(64), ""),
        T::Param("Name", M::ro(STR).max_len(256), ""),
        T::Param("ExecEnvLabel", M::ro(STR).max_len(64), ""),
        T::Param(
            "Status",
            M::ro(STR)
                .force_default()
                .enumeration(&["Idle", "Starting", "Active", "Stopping"]),
            "Idle",
        ),
        T::Param(
            "RequestedState",
            M::rw(STR).enumeration(&["Idle", "Active"]),
            "Idle",
        ),
        T::Param("ExecutionFaultCode", M::ro(STR), "NoFault"),
        T::Param("ExecutionFaultMessage", M::ro(STR).max_len(256), ""),
        T::Param("AutoStart", M::rw(BOOL), "true"),
        T::Param("RunLevel", M::rw(UINT).range(0, 65535), "0"),
        T::Param("Vendor", M::ro(STR).max_len(128), ""),
        T::Param("Version", M::ro(STR).max_len(32), ""),
        T::Param("Description", M::ro(STR).max_len(256), ""),
        T::Param("ExecutionEnvRef", M::ro(STR), ""),
    ]
}
