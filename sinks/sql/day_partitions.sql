SELECT table, partition FROM system.parts
WHERE database = 'qrtrace' AND active AND table IN {tables:Array(String)}
