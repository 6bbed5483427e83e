-- Item texts a semantic snapshot depends on: any metadata change gives a new fingerprint.
SELECT md5(coalesce(bit_xor(hash(item_id, title, description, categories)), 0)::VARCHAR)
FROM items WHERE dataset = $dataset;
