#!/usr/bin/env python3
"""Writes data/cellguard-rig.dbc: the project's own description of the rig's CAN bus.

The layout is the rig's (shared/spec/seed-rig.md, "CAN: CANopen-style modules"): 15 BMU slots,
node id n = 1..15, SYNC 0x080, eight PDOs per module, SDO request 0x600+n and response 0x580+n,
all signals little-endian with the rig's scaling. Written for cellguard from the specification
(not copied from the vendor file); adds an EMCY message per module (0x080+n, CiA 301), which the
simulator sends on internal faults.

Usage: scripts/gen-rig-dbc.py [OUTPUT]   (default: data/cellguard-rig.dbc beside this script)
"""
import os
import sys

MODULES = range(1, 16)
CELL_CHANNELS = 14
TEMPERATURE_SENSORS = 7


def sig(name, start, length, signed=False, scale=1, offset=0, lo=0, hi=0, unit=""):
    sign = "-" if signed else "+"
    return (f' SG_ {name} : {start}|{length}@1{sign} ({fmt(scale)},{fmt(offset)}) '
            f'[{fmt(lo)}|{fmt(hi)}] "{unit}" Controller')


def fmt(x):
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return repr(x) if isinstance(x, float) else str(x)


def cell_v(name, start):
    return sig(name, start, 8, scale=0.01, offset=2.2, lo=2.2, hi=4.75, unit="V")


def module_messages(n):
    """(cob_id, name, sender, signals, comment) of one module."""
    b = f"BMU{n:02d}"
    out = []
    out.append((0x180 + n, f"{b}_pdo1", "Module", [
        sig("CMA_Current", 0, 16, signed=True, scale=0.1, lo=-3276.8, hi=3276.7, unit="A"),
        sig("CMA_Voltage", 16, 16, scale=0.01, lo=0, hi=655.35, unit="V"),
        cell_v("Min_Cell_Voltage", 32),
        cell_v("Max_Cell_Voltage", 40),
        sig("CMA_Min_Temp", 48, 8, signed=True, lo=-128, hi=127, unit="degC"),
        sig("CMA_Max_Temp", 56, 8, signed=True, lo=-128, hi=127, unit="degC"),
    ], "TPDO1: module current (positive discharges), module voltage, cell and temperature extremes."))
    out.append((0x280 + n, f"{b}_pdo2", "Module", [
        sig("CMA_Status", 0, 16, lo=0, hi=65535),
        sig("SOC", 16, 8, scale=0.5, lo=0, hi=100, unit="%"),
        sig("SOH", 24, 8, lo=0, hi=100, unit="%"),
        sig("CellBalancingStatus", 32, 16, lo=0, hi=16383, unit="bit"),
    ], "TPDO2: status bits, module SOC and SOH, balancing bit field (bit i = cell channel i+1)."))
    out.append((0x380 + n, f"{b}_pdo3", "Module",
                [cell_v(f"Cell_{c}_Voltage", 8 * (c - 1)) for c in range(1, 9)],
                "TPDO3: cell channels 1..8; an unpopulated channel reads raw 0 (2.2 V)."))
    out.append((0x480 + n, f"{b}_pdo4", "Module",
                [cell_v(f"Cell_{c}_Voltage", 8 * (c - 9)) for c in range(9, CELL_CHANNELS + 1)],
                "TPDO4: cell channels 9..14."))
    out.append((0x190 + n, f"{b}_pdo5", "Module", [
        sig("Charge_Ah_from_BMU", 0, 32, lo=0, hi=4294967295, unit="As"),
        sig("Discharge_Ah_from_BMU", 32, 32, lo=0, hi=4294967295, unit="As"),
    ], "TPDO5: charge and discharge counters of the module. Despite the names they count "
       "ampere-seconds: the rig's sample log shows them advancing by about 1 per A*s."))
    out.append((0x290 + n, f"{b}_pdo6", "Module",
                [sig(f"CMA_Temp{t}", 8 * (t - 1), 8, signed=True, lo=-128, hi=127, unit="degC")
                 for t in range(1, TEMPERATURE_SENSORS + 1)],
                "TPDO6: the module's seven temperature sensors."))
    out.append((0x390 + n, f"{b}_pdo7", "Module",
                [sig(f"Cell{c:02d}_SOC", 8 * (c - 1), 8, scale=0.5, lo=0, hi=100, unit="%")
                 for c in range(1, 9)],
                "TPDO7: SOC of cell channels 1..8."))
    out.append((0x490 + n, f"{b}_pdo8", "Module",
                [sig(f"Cell{c:02d}_SOC", 8 * (c - 9), 8, scale=0.5, lo=0, hi=100, unit="%")
                 for c in range(9, CELL_CHANNELS + 1)],
                "TPDO8: SOC of cell channels 9..14."))
    sdo = [
        sig("SDO_size_indicate", 0, 1), sig("SDO_Expidited", 1, 1), sig("SDO_unused_bytes", 2, 2),
        sig("SDO_toggle", 4, 1), sig("SDO_CMD", 5, 3), sig("SDO_Index", 8, 16, hi=65535),
        sig("SDO_SubIndex", 24, 8, hi=255), sig("SDO_Data", 32, 32, hi=4294967295),
    ]
    out.append((0x580 + n, f"{b}_SDO_Resp", "Module", sdo,
                "SDO server to client (CiA 301 expedited transfer; command specifier in SDO_CMD)."))
    out.append((0x600 + n, f"{b}_SDO_Req", "Controller", sdo,
                "SDO client to server; the rig's start-up request is 2F 05 18 01 00 00 00 00."))
    out.append((0x080 + n, f"{b}_EMCY", "Module", [
        sig("EMCY_Error_Code", 0, 16, hi=65535),
        sig("EMCY_Error_Register", 16, 8, hi=255),
        sig("EMCY_CMA_Status", 24, 16, hi=65535),
    ], "Emergency (CiA 301): error code, error register, then the module's CMA_Status."))
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "data", "cellguard-rig.dbc")
    messages = [(0x080, "SYNC", "Controller",
                 [sig("Sync_Count", 0, 8, hi=255)],
                 "CANopen SYNC from the controller; every present module answers with its 8 PDOs.")]
    for n in MODULES:
        messages.extend(module_messages(n))
    lines = ['VERSION "cellguard-rig 1"', "", "NS_ :", "\tCM_", "\tBA_DEF_", "\tBA_", "\tVAL_",
             "\tBA_DEF_DEF_", "", "BS_:", "", "BU_: Controller Module", "", ""]
    sizes = {"SYNC": 1}
    for cob_id, name, sender, signals, _ in messages:
        length = sizes.get(name, 8)
        lines.append(f"BO_ {cob_id} {name}: {length} {sender}")
        lines.extend(s.replace("Controller", "Controller" if sender == "Module" else "Module")
                     for s in signals)
        lines.append("")
    lines.append("")
    lines.append('CM_ "cellguard rig bus: written by scripts/gen-rig-dbc.py from shared/spec/seed-rig.md. '
                 'Same COB-IDs, signals and scaling as the rig (15 BMU slots, CANopen, 500 kbit/s, '
                 'all little-endian); EMCY messages added. Used by cellguard sim and cellguard edge.";')
    lines.append('CM_ BU_ Controller "The controller (cellguard edge): sends SYNC and SDO requests.";')
    lines.append('CM_ BU_ Module "A battery module BMU (CMA), node id 1..15.";')
    for cob_id, _, _, _, comment in messages:
        lines.append(f'CM_ BO_ {cob_id} "{comment}";')
    for n in MODULES:
        lines.append(f'CM_ SG_ {0x280 + n} CMA_Status "Bit 0 cell over-voltage (>= 4.25 V), bit 1 cell '
                     f'under-voltage (<= 2.5 V), bit 2 over-temperature (>= 60 degC), bit 3 balancing.";')
    lines.append('BA_DEF_ BO_ "GenMsgCycleTime" INT 0 65535;')
    lines.append('BA_DEF_ "BusType" STRING ;')
    lines.append('BA_DEF_ "Baudrate" INT 0 1000000;')
    lines.append('BA_DEF_DEF_ "GenMsgCycleTime" 0;')
    lines.append('BA_DEF_DEF_ "BusType" "CAN";')
    lines.append('BA_DEF_DEF_ "Baudrate" 500000;')
    lines.append('BA_ "BusType" "CAN";')
    lines.append('BA_ "Baudrate" 500000;')
    lines.append('BA_ "GenMsgCycleTime" BO_ 128 100;')
    for n in MODULES:
        lines.append(f'VAL_ {0x580 + n} SDO_CMD 0 "segment_upload" 1 "initiate_download_request" '
                     f'2 "initiate_upload_request" 3 "initiate_download_response" 4 "abort" ;')
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
