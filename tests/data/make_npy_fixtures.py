#!/usr/bin/env python3
"""Writes the .npy fixtures of tests/unit/test_rt_io.c (no numpy needed:
the format is a magic string, a version, a header length and a Python
dict literal padded so the data starts at a multiple of 64 bytes), and
its CSV fixtures that hold bytes an editor would not keep (a NUL, byte-order
marks) or are too long to read (a 453-digit number)."""
import struct

def npy(name, header, payload, version=(1, 0), pad=True):
    h = header.encode('latin1')
    pre = 10 if version[0] == 1 else 12
    if pad:
        total = pre + len(h) + 1
        h += b' ' * ((64 - total % 64) % 64) + b'\n'
    lenfield = struct.pack('<H', len(h)) if version[0] == 1 else struct.pack('<I', len(h))
    with open(name, 'wb') as f:
        f.write(b'\x93NUMPY' + bytes(version) + lenfield + h + payload)

f8 = struct.pack('<6d', 1.5, -2.0, 3.25, 4.0, 5.0, -6.5)
npy('good_f8.npy', "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", f8)
npy('good_f4.npy', "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", struct.pack('<4f', 0.5, -1.25, 2.0, 3.0))
npy('good_i8.npy', "{'descr': '<i8', 'fortran_order': False, 'shape': (3, 1), }", struct.pack('<3q', 7, -8, 9007199254740992))
npy('good_v2.npy', "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f8'}", f8, version=(2, 0))
npy('good_v3.npy', "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", f8, version=(3, 0))
npy('fortran.npy', "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", f8)
npy('bigendian.npy', "{'descr': '>f8', 'fortran_order': False, 'shape': (2, 3), }", struct.pack('>6d', *range(6)))
npy('int32.npy', "{'descr': '<i4', 'fortran_order': False, 'shape': (6,), }", struct.pack('<6i', *range(6)))
npy('three_d.npy', "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2, 3), }", f8)
npy('scalar.npy', "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", f8[:8])
npy('truncated_data.npy', "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", f8[:40])
npy('absurd_shape.npy', "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000000000000, 3), }", f8)
npy('huge_shape.npy', "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000, 100000000), }", f8)
npy('nan.npy', "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", f8[:32] + struct.pack('<d', float('nan')) + f8[40:])
npy('big_i8.npy', "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", struct.pack('<q', 2**53 + 1))
npy('no_shape.npy', "{'descr': '<f8', 'fortran_order': False, }", f8)
npy('dup_descr.npy', "{'descr': '<f8', 'fortran_order': False, 'descr': '<f4', 'shape': (2, 3), }", f8)
npy('huge_value.npy', "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", struct.pack('<2d', 1.0, 1e308))
npy('version9.npy', "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", f8, version=(9, 0))
with open('truncated_header.npy', 'wb') as f:
    f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', 118) + b"{'descr': '<f8', 'fortr")
with open('bad_magic.npy', 'wb') as f:
    f.write(b'PK\x03\x04 this is a zip file, not an array\n')
open('empty.npy', 'wb').close()

def raw(name, data):
    with open(name, 'wb') as f:
        f.write(data)

raw('nul_cell.csv', b'x,y\n1,2\x00 9999\n3,4\n')
raw('bom.csv', b'\xef\xbb\xbf1,2,3\n4,5,6\n')
raw('bom_header.csv', b'\xef\xbb\xbfx1,x2\n1,2\n')
raw('utf16.csv', '1,2\n3,4\n'.encode('utf-16'))
digits = '1.' + ''.join(str(i % 10) for i in range(451))
raw('long_number.csv', ('%s,2\n' % digits).encode())
