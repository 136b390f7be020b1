# The sqlite-db workload's input: SQL for the sqlite3 shell (sqlite3
# :memory: reading it on stdin): a shop's customers, products and orders
# with indexes, generated from a seeded PRNG, then "SELECT 'ready'" and
# queries over them until the shell is killed.
# SPDX-License-Identifier: MIT
import random
import sys

rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
scale = int(sys.argv[2]) if len(sys.argv) > 2 else 60000
SYL = [rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") +
       rng.choice(["", "n", "r", "s"]) for _ in range(200)]


def word(n=None):
    return "".join(rng.choice(SYL) for _ in range(n or rng.randint(1, 3)))


out = sys.stdout
out.write("PRAGMA cache_size=-400000;\n"
          "CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT, "
          "email TEXT, city TEXT, balance REAL, created TEXT);\n"
          "CREATE TABLE product(id INTEGER PRIMARY KEY, title TEXT, "
          "price REAL, stock INTEGER, descr TEXT);\n"
          "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, "
          "product INTEGER, qty INTEGER, total REAL, status TEXT, "
          "day TEXT, note TEXT);\n")
cities = [word(2).title() for _ in range(300)]
out.write("BEGIN;\n")
for i in range(1, scale + 1):
    n = f"{word().title()} {word().title()}"
    out.write(f"INSERT INTO customer VALUES({i},'{n}','{word()}.{word()}"
              f"@{word(2)}.example','{rng.choice(cities)}',"
              f"{rng.uniform(-500, 5000):.2f},'20{rng.randint(10, 25)}-"
              f"{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}');\n")
nprod = scale // 10
for i in range(1, nprod + 1):
    d = " ".join(word() for _ in range(rng.randint(5, 30)))
    out.write(f"INSERT INTO product VALUES({i},'{word(2).title()} "
              f"{word()}',{rng.uniform(1, 300):.2f},{rng.randint(0, 900)},"
              f"'{d}');\n")
status = ["new", "paid", "shipped", "delivered", "returned"]
for i in range(1, 4 * scale + 1):
    note = " ".join(word() for _ in range(rng.randint(0, 8)))
    q = rng.randint(1, 9)
    out.write(f"INSERT INTO orders VALUES({i},{rng.randint(1, scale)},"
              f"{int(nprod * rng.random() ** 2) + 1},{q},"
              f"{q * rng.uniform(1, 300):.2f},'{rng.choice(status)}',"
              f"'202{rng.randint(0, 5)}-{rng.randint(1, 12):02d}-"
              f"{rng.randint(1, 28):02d}','{note}');\n")
out.write("COMMIT;\n"
          "CREATE INDEX orders_customer ON orders(customer);\n"
          "CREATE INDEX orders_day ON orders(day, status);\n"
          "CREATE INDEX customer_city ON customer(city, name);\n"
          "SELECT 'ready';\n")
out.flush()
while True:
    c = rng.choice(cities)
    out.write("SELECT count(*), sum(o.total) FROM customer c JOIN orders o "
              f"ON o.customer = c.id WHERE c.city = '{c}';\n"
              "SELECT status, count(*) FROM orders WHERE day >= "
              f"'202{rng.randint(0, 5)}' GROUP BY status;\n")
    out.flush()
