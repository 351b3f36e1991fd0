// Boost.Asio: N concurrent async_connect + async_write + async_read on one
// io_context (epoll reactor, edge-triggered, descriptor registered when the
// socket is opened -- before connect()), timed against one.
//   asio_echo HOST PORT N     -> "one_ms=A all_ms=B n=N", "ok N echoes"
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

namespace asio = boost::asio;
using asio::ip::tcp;

static int failures;

struct Conn : std::enable_shared_from_this<Conn> {
	tcp::socket sock;
	std::string msg, got;
	explicit Conn(asio::io_context &io, std::string m) : sock(io), msg(std::move(m)), got(msg.size(), '\0') {}
	void fail(const char *what, const boost::system::error_code &ec)
	{
		std::fprintf(stderr, "asio: %s: %s\n", what, ec.message().c_str());
		failures++;
	}
	void start(const tcp::endpoint &ep)
	{
		auto self = shared_from_this();
		sock.async_connect(ep, [self](const boost::system::error_code &ec) {
			if (ec)
				return self->fail("connect", ec);
			asio::async_write(self->sock, asio::buffer(self->msg),
					  [self](const boost::system::error_code &ec2, std::size_t) {
				if (ec2)
					return self->fail("write", ec2);
				asio::async_read(self->sock, asio::buffer(&self->got[0], self->got.size()),
						 [self](const boost::system::error_code &ec3, std::size_t) {
					if (ec3)
						return self->fail("read", ec3);
					if (self->got != self->msg) {
						std::fprintf(stderr, "asio: echo mismatch\n");
						failures++;
					}
				});
			});
		});
	}
};

static double run(const tcp::endpoint &ep, int n, const char *tag)
{
	asio::io_context io;
	auto t0 = std::chrono::steady_clock::now();
	for (int i = 0; i < n; i++)
		std::make_shared<Conn>(io, std::string("asio ") + tag + std::to_string(i) + "\n")->start(ep);
	io.run_for(std::chrono::seconds(20));
	if (!io.stopped()) {
		std::fprintf(stderr, "asio: timeout\n");
		std::exit(1);
	}
	return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	tcp::endpoint ep(asio::ip::make_address(argv[1]), (unsigned short)std::atoi(argv[2]));
	int n = std::atoi(argv[3]);
	run(ep, 1, "warm-up");
	double one = run(ep, 1, "single");
	double all = run(ep, n, "");
	if (failures)
		return 1;
	std::printf("one_ms=%.0f all_ms=%.0f n=%d\nok %d echoes\n", one, all, n, n);
	return 0;
}
