# udpserver.py echo PORT | dns PORT ANSWER_IP
#   echo: answers every datagram with DATA|SENDER-IP, so a check sees who
#         sent it (the relay, or the client itself)
#   dns:  answers every A question with ANSWER_IP
import socket, struct, sys

mode, port = sys.argv[1], int(sys.argv[2])
answer = socket.inet_aton(sys.argv[3]) if mode == "dns" else b""
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("0.0.0.0", port))
while True:
    data, addr = s.recvfrom(65535)
    if mode == "echo":
        s.sendto(data + b"|" + addr[0].encode(), addr)
        continue
    i = 12
    while data[i]:
        i += data[i] + 1
    q = data[12:i + 5]
    ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + answer
    s.sendto(data[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, 1, 0, 0) + q + ans, addr)
