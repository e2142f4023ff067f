-- Wireshark / tshark dissector for votecast frames (version 1, 108 bytes, big-endian; the
-- layout is the README's "Frame layout" table and core/src/wire/).
--
-- Use:  wireshark -X lua_script:contrib/wireshark/votecast.lua
--       tshark -X lua_script:contrib/wireshark/votecast.lua -r capture.pcap -Y votecast
-- or copy this file into ~/.local/lib/wireshark/plugins/.
--
-- Registered on UDP port 7277 (the default group's port) and as a UDP heuristic (108
-- bytes starting with "VCST"), so clusters on other ports are decoded too. Every field is
-- a filterable field (votecast.sender, votecast.state, votecast.vote.leader,
-- votecast.epoch, votecast.round, ...). The CRC-32 (IEEE, as crc32fast) over bytes 0..104
-- is recomputed: votecast.crc.status is "good" or "bad" and a bad one is an expert error.
-- Flag bits without a name here are shown generically as "bit N" (a newer daemon may set
-- them). The authentication tag is shown, not verified (that needs the key).

local votecast = Proto("votecast", "votecast leader election")

local FRAME_LEN = 108
local STATES = { [0] = "LOOKING", [1] = "FOLLOWING", [2] = "LEADING", [3] = "OBSERVING" }
-- Named flag bits; any other set bit is shown as "bit N".
local FLAG_NAMES = {
    [0] = "RESIGN", [1] = "ESTABLISHED", [2] = "INELIGIBLE", [3] = "UNICAST_ANSWERS",
    [4] = "ANSWER_OPTIONAL", [5] = "HANDOVER",
}

local f = {}
f.magic = ProtoField.string("votecast.magic", "Magic")
f.version = ProtoField.uint8("votecast.version", "Version")
f.state = ProtoField.uint8("votecast.state", "Sender state", base.DEC, STATES)
f.state_name = ProtoField.string("votecast.state.name", "Sender state name")
f.flags = ProtoField.uint8("votecast.flags", "Flags", base.HEX)
f.flag_names = ProtoField.string("votecast.flags.names", "Flags set")
f.flag_bits = {}
for bit = 0, 7 do
    local name = FLAG_NAMES[bit] or ("bit " .. bit)
    local abbrev = FLAG_NAMES[bit] and ("votecast.flags." .. FLAG_NAMES[bit]:lower())
        or ("votecast.flags.bit" .. bit)
    f.flag_bits[bit] = ProtoField.bool(abbrev, name, 8, nil, bit32.lshift(1, bit))
end
f.key_id = ProtoField.uint8("votecast.key_id", "Key id (0 = unauthenticated)")
f.cluster = ProtoField.uint32("votecast.cluster", "Cluster id")
f.sender = ProtoField.uint64("votecast.sender", "Sender id")
f.incarnation = ProtoField.uint32("votecast.incarnation", "Sender incarnation")
f.sequence = ProtoField.uint64("votecast.sequence", "Sequence number")
f.vote_leader = ProtoField.uint64("votecast.vote.leader", "Vote: proposed leader")
f.vote_zxid = ProtoField.uint64("votecast.vote.zxid", "Vote: zxid")
f.vote_peer_epoch = ProtoField.uint64("votecast.vote.peer_epoch", "Vote: peer epoch")
f.round = ProtoField.uint64("votecast.round", "Round (election epoch)")
f.accepted_epoch = ProtoField.uint64("votecast.accepted_epoch", "Accepted epoch")
f.epoch = ProtoField.uint64("votecast.epoch", "Epoch (proposed/established or acknowledged)")
f.echo = ProtoField.uint64("votecast.echo", "Echo (leader clock stamp / echoed stamp)")
f.auth_tag = ProtoField.bytes("votecast.auth_tag", "Authentication tag (HMAC-SHA256, 16 bytes)")
f.crc = ProtoField.uint32("votecast.crc", "CRC-32", base.HEX)
f.crc_computed = ProtoField.uint32("votecast.crc.computed", "CRC-32 computed", base.HEX)
f.crc_status = ProtoField.string("votecast.crc.status", "CRC-32 status")

-- Flattened: Wireshark wants the fields as a flat list.
local flat = {}
for k, v in pairs(f) do
    if k ~= "flag_bits" then flat[#flat + 1] = v end
end
for bit = 0, 7 do flat[#flat + 1] = f.flag_bits[bit] end
votecast.fields = flat

local e_bad_crc = ProtoExpert.new("votecast.crc.bad", "Bad CRC-32", expert.group.CHECKSUM,
    expert.severity.ERROR)
local e_bad_len = ProtoExpert.new("votecast.length.bad", "Not 108 bytes",
    expert.group.MALFORMED, expert.severity.ERROR)
local e_unknown = ProtoExpert.new("votecast.unknown", "Unknown state, version or magic",
    expert.group.MALFORMED, expert.severity.WARN)
votecast.experts = { e_bad_crc, e_bad_len, e_unknown }

-- CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as crc32fast computes it.
local crc_table = {}
for i = 0, 255 do
    local c = i
    for _ = 1, 8 do
        if bit32.band(c, 1) == 1 then
            c = bit32.bxor(0xEDB88320, bit32.rshift(c, 1))
        else
            c = bit32.rshift(c, 1)
        end
    end
    crc_table[i] = c
end

local function crc32(tvb, len)
    local crc = 0xFFFFFFFF
    for i = 0, len - 1 do
        local byte = tvb(i, 1):uint()
        crc = bit32.bxor(crc_table[bit32.band(bit32.bxor(crc, byte), 0xFF)], bit32.rshift(crc, 8))
    end
    return bit32.bxor(crc, 0xFFFFFFFF)
end

local NO_LEADER = UInt64(0xFFFFFFFF, 0xFFFFFFFF)

function votecast.dissector(tvb, pinfo, tree)
    local len = tvb:len()
    pinfo.cols.protocol = "VOTECAST"
    local t = tree:add(votecast, tvb(), "votecast frame")
    if len ~= FRAME_LEN then
        t:add_proto_expert_info(e_bad_len, "length " .. len .. ", expected 108")
        return len
    end
    t:add(f.magic, tvb(0, 4))
    t:add(f.version, tvb(4, 1))
    t:add(f.state, tvb(5, 1))
    t:add(f.state_name, tvb(5, 1), STATES[tvb(5, 1):uint()] or "unknown"):set_generated()
    local flags = tvb(6, 1):uint()
    local ft = t:add(f.flags, tvb(6, 1))
    local names = {}
    for bit = 0, 7 do
        ft:add(f.flag_bits[bit], tvb(6, 1))
        if bit32.band(flags, bit32.lshift(1, bit)) ~= 0 then
            names[#names + 1] = FLAG_NAMES[bit] or ("bit " .. bit)
        end
    end
    ft:add(f.flag_names, tvb(6, 1), table.concat(names, ","))
    t:add(f.key_id, tvb(7, 1))
    t:add(f.cluster, tvb(8, 4))
    t:add(f.sender, tvb(12, 8))
    t:add(f.incarnation, tvb(20, 4))
    t:add(f.sequence, tvb(24, 8))
    local leader = t:add(f.vote_leader, tvb(32, 8))
    if tvb(32, 8):uint64() == NO_LEADER then leader:append_text(" (no leader)") end
    t:add(f.vote_zxid, tvb(40, 8))
    t:add(f.vote_peer_epoch, tvb(48, 8))
    t:add(f.round, tvb(56, 8))
    t:add(f.accepted_epoch, tvb(64, 8))
    t:add(f.epoch, tvb(72, 8))
    t:add(f.echo, tvb(80, 8))
    t:add(f.auth_tag, tvb(88, 16))
    local stated = tvb(104, 4):uint()
    local computed = crc32(tvb, 104)
    t:add(f.crc, tvb(104, 4))
    t:add(f.crc_computed, tvb(104, 4), computed):set_generated()
    local status = (stated == computed) and "good" or "bad"
    local st = t:add(f.crc_status, tvb(104, 4), status)
    st:set_generated()
    if status == "bad" then st:add_proto_expert_info(e_bad_crc) end

    local state = STATES[tvb(5, 1):uint()]
    if tvb(0, 4):string() ~= "VCST" or tvb(4, 1):uint() ~= 1 or state == nil then
        t:add_proto_expert_info(e_unknown)
    end
    local info = string.format("%s sender=%s leader=%s epoch=%s round=%s",
        state or ("state " .. tvb(5, 1):uint()), tostring(tvb(12, 8):uint64()),
        tvb(32, 8):uint64() == NO_LEADER and "none" or tostring(tvb(32, 8):uint64()),
        tostring(tvb(72, 8):uint64()), tostring(tvb(56, 8):uint64()))
    if #names > 0 then info = info .. " [" .. table.concat(names, ",") .. "]" end
    if status == "bad" then info = info .. " [BAD CRC]" end
    pinfo.cols.info = info
    t:append_text(": " .. info)
    return len
end

-- Any UDP port: 108 bytes that start with the magic.
local function heuristic(tvb, pinfo, tree)
    if tvb:len() ~= FRAME_LEN or tvb(0, 4):string() ~= "VCST" then return false end
    votecast.dissector(tvb, pinfo, tree)
    return true
end

DissectorTable.get("udp.port"):add(7277, votecast)
votecast:register_heuristic("udp", heuristic)
