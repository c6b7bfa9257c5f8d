package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A record on disk is a 16-byte header and its payload:
//
//	length  uint32  payload bytes
//	crc     uint32  CRC-32C of offset and payload
//	offset  uint64  the record's offset in the log
//	payload [length]byte
//
// All integers are little-endian. The checksum covers the offset, so a
// record left from an older file at the same place, or copied from
// elsewhere, does not pass for the record that belongs there.
const headerSize = 16

// MaxRecordSize is the largest payload a record may have. A length field
// above it is corruption, not a reason to allocate.
const MaxRecordSize = 4 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(offset uint64, payload []byte) uint32 {
	var o [8]byte
	binary.LittleEndian.PutUint64(o[:], offset)
	return crc32.Update(crc32.Checksum(o[:], castagnoli), castagnoli, payload)
}

// appendRecord appends the encoded record to b.
func appendRecord(b []byte, offset uint64, payload []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, checksum(offset, payload))
	b = binary.LittleEndian.AppendUint64(b, offset)
	return append(b, payload...)
}

// errTorn is a record cut short: the end of what was written.
var errTorn = errors.New("record cut short")

// CorruptError is a record whose header or checksum is wrong.
type CorruptError struct {
	Offset uint64 // the offset the record should have had
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("record %d: %s", e.Offset, e.Reason)
}

// decodeRecord reads the record at the start of b, whose offset must be at
// least min (offsets only grow; a gap is where recovery cut out damaged
// records). It returns the record's offset, its payload (aliasing b) and its
// size on disk, or errTorn if b ends before the record does, or a
// *CorruptError.
func decodeRecord(b []byte, min uint64) (offset uint64, payload []byte, size int, err error) {
	want := min
	if len(b) < headerSize {
		return 0, nil, 0, errTorn
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	sum := binary.LittleEndian.Uint32(b[4:8])
	off := binary.LittleEndian.Uint64(b[8:16])
	if n > MaxRecordSize {
		return 0, nil, 0, &CorruptError{Offset: want, Reason: fmt.Sprintf("length %d is over the limit of %d", n, MaxRecordSize)}
	}
	if len(b)-headerSize < int(n) {
		return 0, nil, 0, errTorn
	}
	if off < want {
		return 0, nil, 0, &CorruptError{Offset: want, Reason: fmt.Sprintf("header says offset %d", off)}
	}
	payload = b[headerSize : headerSize+int(n)]
	if checksum(off, payload) != sum {
		return 0, nil, 0, &CorruptError{Offset: want, Reason: "checksum mismatch"}
	}
	return off, payload, headerSize + int(n), nil
}
