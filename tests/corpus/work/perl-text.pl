# The perl-text workload: perl holding generated pseudo-text: documents as
# strings in a hash, their sentences split into arrays of words, and an
# inverted index (word -> document numbers).  Prints "ready" once built,
# then keeps searching the documents.  The words come from a seeded PRNG
# (perl's srand/rand), so the pages hold no third-party text.
# SPDX-License-Identifier: MIT
use strict;
use warnings;

my ($seed, $ndocs) = (@ARGV, 1, 20000)[0, 1];
srand($seed);
my @cons = split //, "bcdfghklmnprstvwz";
my @vow = split //, "aeiouy";
my @vocab;
for (1 .. 20000) {
    my $w = "";
    $w .= $cons[rand @cons] . $vow[rand @vow] . (rand() < 0.3 ? $cons[rand @cons] : "")
        for 1 .. 1 + int(rand(3));
    push @vocab, $w;
}
# Zipf-like: low ranks are far more frequent, as in real text.
sub word { $vocab[int(@vocab * rand() ** 3)] }

my (%docs, %sentences, %index, @titles);
for my $d (1 .. $ndocs) {
    my $title = join(" ", map { ucfirst word() } 1 .. 2 + int(rand(4)));
    my @para;
    for (1 .. 1 + int(rand(6))) {
        my @s;
        for (1 .. 2 + int(rand(8))) {
            my @w = map { word() } 1 .. 4 + int(rand(14));
            $w[0] = ucfirst $w[0];
            push @s, [@w];
            push @{ $index{lc $_} }, $d for @w;
        }
        push @para, join(" ", map { join(" ", @$_) . (rand() < 0.1 ? "?" : ".") } @s);
        push @{ $sentences{$title} }, @s;
    }
    $docs{$title} = { id => $d, text => join("\n\n", @para),
                      words => scalar(@para), tags => [map { word() } 1 .. 3] };
    push @titles, $title;
}
$| = 1;
print "ready ", scalar(@titles), " ", scalar(keys %index), "\n";
while (1) {
    my $re = word();
    my $n = grep { $docs{$_}{text} =~ /\b$re\b/ } @titles;
}
