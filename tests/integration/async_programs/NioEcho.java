// Java NIO: N non-blocking SocketChannels connected at once and driven by one
// Selector (epoll): OP_CONNECT -> finishConnect -> write -> OP_READ -> echo.
//   java NioEcho.java HOST PORT N  -> "one_ms=A all_ms=B n=N", "ok N echoes"
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

public class NioEcho {
    static final class Conn {
        final byte[] msg;
        final ByteBuffer out, in;
        Conn(String m) {
            msg = m.getBytes(StandardCharsets.UTF_8);
            out = ByteBuffer.wrap(msg);
            in = ByteBuffer.allocate(msg.length);
        }
    }

    static double run(InetSocketAddress addr, int n, String tag) throws Exception {
        long t0 = System.nanoTime();
        try (Selector sel = Selector.open()) {
            for (int i = 0; i < n; i++) {
                SocketChannel ch = SocketChannel.open();
                ch.configureBlocking(false);
                boolean now = ch.connect(addr);
                ch.register(sel, now ? SelectionKey.OP_WRITE : SelectionKey.OP_CONNECT,
                        new Conn("nio " + tag + i + "\n"));
            }
            int left = n;
            long deadline = System.nanoTime() + 20_000_000_000L;
            while (left > 0) {
                if (System.nanoTime() > deadline)
                    throw new RuntimeException("timeout, " + left + " left");
                sel.select(1000);
                for (SelectionKey k : sel.selectedKeys()) {
                    SocketChannel ch = (SocketChannel) k.channel();
                    Conn c = (Conn) k.attachment();
                    if (k.isConnectable()) {
                        if (ch.finishConnect())
                            k.interestOps(SelectionKey.OP_WRITE);
                    } else if (k.isWritable()) {
                        ch.write(c.out);
                        if (!c.out.hasRemaining())
                            k.interestOps(SelectionKey.OP_READ);
                    } else if (k.isReadable()) {
                        if (ch.read(c.in) < 0)
                            throw new RuntimeException("EOF");
                        if (!c.in.hasRemaining()) {
                            if (!Arrays.equals(c.in.array(), c.msg))
                                throw new RuntimeException("echo mismatch");
                            k.cancel();
                            ch.close();
                            left--;
                        }
                    }
                }
                sel.selectedKeys().clear();
            }
        }
        return (System.nanoTime() - t0) / 1e6;
    }

    public static void main(String[] a) throws Exception {
        InetSocketAddress addr = new InetSocketAddress(a[0], Integer.parseInt(a[1]));
        int n = Integer.parseInt(a[2]);
        run(addr, 1, "warm-up");
        double one = run(addr, 1, "single");
        double all = run(addr, n, "");
        System.out.printf("one_ms=%.0f all_ms=%.0f n=%d%nok %d echoes%n", one, all, n, n);
    }
}
